"""The embedded storage's compare-and-swap records (the job ledger on ``file://``)."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC

import pytest

from actors.config.settings import load_settings
from actors.storage import PreconditionFailed, open_storage


def store(tmp_path):
    settings = load_settings(data_dir=str(tmp_path), jwt_secret="s" * 40)
    return open_storage(settings.storage_url, settings.links)


def _increment(tmp_path, key: str, times: int) -> None:
    records = store(tmp_path)
    for _ in range(times):
        while True:
            value, generation = records.read_json(key)
            try:
                records.write_json(key, {"n": value["n"] + 1}, generation)
                break
            except PreconditionFailed:
                continue


def _process(tmp_path) -> None:
    """One process's share: three threads on one record, one on another."""
    threads = [threading.Thread(target=_increment, args=(tmp_path, "jobs/counter.json", 25)) for _ in range(3)]
    threads.append(threading.Thread(target=_increment, args=(tmp_path, "jobs/other.json", 25)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_compare_and_swap_loses_no_update(tmp_path):
    """Two processes with three threads each increment one record: every increment lands once."""
    records = store(tmp_path)
    records.write_json("jobs/counter.json", {"n": 0}, "0")
    records.write_json("jobs/other.json", {"n": 0}, "0")

    # Spawned, not forked: the test session runs Ray, and a child forked from a process with
    # Ray's threads can crash (SIGSEGV) before it runs a line of ours.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process, args=(tmp_path,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert records.read_json("jobs/counter.json")[0] == {"n": 150}
    assert records.read_json("jobs/other.json")[0] == {"n": 50}
    leftovers = [p.name for p in (tmp_path / "files" / "jobs").iterdir() if p.name.startswith(".ledger-")]
    assert leftovers == []


def test_a_refused_swap_leaves_the_record_and_no_temporary_file(tmp_path):
    records = store(tmp_path)
    first = records.write_json("jobs/a.json", {"v": 1}, "0")
    with pytest.raises(PreconditionFailed):
        records.write_json("jobs/a.json", {"v": 2}, "stale")
    assert records.read_json("jobs/a.json") == ({"v": 1}, first)
    assert not [p for p in (tmp_path / "files" / "jobs").iterdir() if p.name.startswith(".ledger-")]


def test_delete_only_at_the_generation_it_was_read_at(tmp_path):
    records = store(tmp_path)
    first = records.write_json("jobs/a.json", {"v": 1}, "0")
    second = records.write_json("jobs/a.json", {"v": 2}, first)
    with pytest.raises(PreconditionFailed):
        records.delete("jobs/a.json", first)
    records.delete("jobs/a.json", second)
    assert records.read_json("jobs/a.json") is None
    with pytest.raises(PreconditionFailed):
        records.delete("jobs/a.json", second)
    records.delete("jobs/a.json")  # unconditional: nothing there is fine
    records.delete("nowhere/b.json")


def test_list_gives_the_names_under_a_prefix_in_order_with_their_times(tmp_path):
    records = store(tmp_path)
    for name in ("b", "a", "c"):
        records.write_json(f"jobs-pending/{name}", {}, None)
    listed = records.list("jobs-pending/", 2)
    assert [name for name, _ in listed] == ["a", "b"]  # never the lock or temporary files beside them
    assert records.list("nothing-here/", 10) == []


def test_keys_written_since_lists_recent_records_only(tmp_path):
    """What the rate limiter reads back after a restart: the ledger's records of the last minute."""
    import os
    from datetime import datetime, timedelta

    records = store(tmp_path)
    assert list(records.keys_written_since("jobs", datetime.now(UTC))) == []  # no directory yet
    records.write_json("jobs/old.json", {"n": 1}, None)
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(records.path("jobs/old.json"), (hour_ago, hour_ago))
    records.write_json("jobs/new.json", {"n": 2}, None)
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    assert list(records.keys_written_since("jobs", minute_ago)) == ["jobs/new.json"]  # no lock files
