"""A requester taking a job back (actors/job/cancel.py and the consumer's side of it), with the
real local queue, storage, warehouse and outbox: a canceled job stops within seconds, leaves no
file and no notification and its message is acked; a finished job's file is deleted; a cancel
racing the job's last step ends in exactly one outcome."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from actors.job.cancel import withdraw
from actors.job.consumer import JobRunner
from actors.job.ledger import Ledger
from actors.job.state import Status
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.report.render import render_serially
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.support.jobs import accept


@pytest.fixture
def env(tmp_path, settings_factory):
    settings = settings_factory(tmp_path, chunk_rows=2)  # several chunks: a progress step between each
    queue = open_queue(settings.queue_url)
    storage = open_storage(settings.storage_url, settings.links)
    ledger = Ledger(storage)

    def runner(render=render_serially):
        notifier = open_notifier(settings.notify_url, settings.notify)
        return JobRunner(settings.runner, queue, storage, open_warehouse(settings.warehouse_url), notifier, render)

    def outbox():
        path = settings.outbox_path
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def files():
        root = settings.data_dir / "files" / "catalog"
        return sorted(root.rglob("*.xlsx")) if root.exists() else []

    def cancel(job_id):
        return withdraw(ledger, *ledger.get(job_id))

    return queue, ledger, runner, outbox, files, cancel


def slow(seconds_per_chunk: float):
    """Serial rendering that takes its time over each chunk, as a big report's does."""

    def render(partitions, plan, rows, columns, on_done, **format_options):
        def paced(k):
            time.sleep(seconds_per_chunk)
            on_done(k)

        return render_serially(partitions, plan, rows, columns, paced, **format_options)

    return render


def test_a_queued_job_canceled_is_never_run(env):
    queue, ledger, runner, outbox, files, cancel = env
    job_id = accept(queue, ledger.storage)
    assert cancel(job_id).status is Status.canceled
    assert runner().run_once(wait_seconds=0)
    state, _ = ledger.get(job_id)
    assert state.status is Status.canceled and state.attempts == 0
    assert outbox() == [] and files() == [] and queue.pending() == 0
    assert ledger.pending(10) == []  # nothing left for the reconciler
    assert cancel(job_id).status is Status.canceled  # again: nothing changes


def test_a_running_job_stops_within_seconds_and_leaves_nothing(env):
    queue, ledger, runner, outbox, files, cancel = env
    job_id = accept(queue, ledger.storage)
    worker = runner(render=slow(0.3))  # 8 chunks: about 2.5 s of rendering
    thread = threading.Thread(target=worker.run_once, kwargs={"wait_seconds": 0})
    thread.start()
    while ledger.get(job_id)[0].progress < 0.3:  # rendering
        time.sleep(0.05)
    canceled_at = time.monotonic()
    assert cancel(job_id).status is Status.canceled
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - canceled_at < 5
    assert ledger.get(job_id)[0].status is Status.canceled
    assert outbox() == [] and files() == [] and queue.pending() == 0


def test_a_finished_jobs_file_is_deleted_and_its_link_stops_working(env):
    queue, ledger, runner, outbox, files, cancel = env
    job_id = accept(queue, ledger.storage)
    assert runner().run_once(wait_seconds=0)
    [note] = outbox()
    assert files() and ledger.get(job_id)[0].status is Status.done
    state = cancel(job_id)
    assert state.status is Status.deleted and state.url is None and state.object_key is None
    assert files() == [] and outbox() == [note]
    assert cancel(job_id).status is Status.deleted


def test_a_cancel_racing_the_last_step_ends_in_exactly_one_outcome(env):
    """Sent at random moments around the job's end, a DELETE ends as exactly one of: canceled
    (no file, no notification), done (the cancel lost: its file and one notification) or, when
    it found the job already done, deleted (no file; the one notification it had)."""
    queue, ledger, runner, outbox, files, cancel = env
    seen = []
    for seed in range(15):
        job_id = accept(queue, ledger.storage)
        worker = runner(render=slow(0.02))
        thread = threading.Thread(target=worker.run_once, kwargs={"wait_seconds": 0})
        thread.start()
        time.sleep(random.Random(seed).uniform(0.05, 0.5))  # about where the job ends
        answer = cancel(job_id)
        thread.join(10)
        state = ledger.get(job_id)[0]
        notes = [n for n in outbox() if n["jobId"] == job_id]
        mine = [f for f in files() if job_id in str(f)]
        assert answer.status is state.status, (answer.status, state.status)
        assert state.status in (Status.canceled, Status.done, Status.deleted)
        if state.status is Status.canceled:
            assert mine == [] and notes == []
        elif state.status is Status.done:
            assert len(mine) == 1 and len(notes) == 1
        else:
            assert mine == [] and len(notes) == 1
        assert queue.pending() == 0, f"seed {seed}: {state.status}"
        seen.append(state.status)
    assert Status.canceled in seen and set(seen) - {Status.canceled}, seen  # the race was run both ways
