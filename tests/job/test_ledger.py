"""The ledger (actors/job/ledger.py) on file storage: compare-and-swap records and the index of
jobs not yet notified; no Ray."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors.job.ledger import ABSENT, Ledger
from actors.job.message import utcnow
from actors.job.state import JobState, Status
from actors.storage import LinkOptions, PreconditionFailed, open_storage
from tests.support.jobs import catalog_job


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(open_storage(f"file://{tmp_path}/files", LinkOptions(secret="s" * 32)))


def accepted(institution_id: int = 1) -> JobState:
    return JobState.accepted(catalog_job(institution_id=institution_id))


def test_create_get_and_compare_and_swap(ledger):
    state = accepted()
    gen = ledger.create(state)
    assert gen and ledger.create(state) is None  # the id is taken
    found, found_gen = ledger.get(state.id)
    assert (found.id, found.status, found.institution_id, found_gen) == (state.id, state.status, 1, gen)
    newer = ledger.put(found.claimed("w1"), gen)
    with pytest.raises(PreconditionFailed):
        ledger.put(found.claimed("w2"), gen)  # a second claimant read the old generation
    now, now_gen = ledger.get(state.id)
    assert (now.worker, now.status, now_gen) == ("w1", "running", newer)
    with pytest.raises(PreconditionFailed):
        ledger.put(accepted(), "12345")
    assert ledger.get("nobody") is None


def test_the_index_lists_pending_jobs_until_unlisted(ledger):
    states = [accepted() for _ in range(3)]
    for state in states:
        ledger.create(state)
    assert [job_id for job_id, _ in ledger.pending(10)] == [s.id for s in states]  # ULIDs: oldest first
    assert len(ledger.pending(2)) == 2
    ledger.unlist(states[0].id)
    assert [job_id for job_id, _ in ledger.pending(10)] == [s.id for s in states[1:]]
    assert ledger.get(states[0].id) is not None  # the record stays


def test_withdraw_only_an_untouched_record(ledger):
    untouched, claimed = accepted(), accepted()
    gen = ledger.create(untouched)
    assert ledger.withdraw(untouched, gen)
    assert ledger.get(untouched.id) is None and ledger.pending(10) == []
    gen = ledger.create(claimed)
    ledger.put(claimed.claimed("w"), gen)
    assert not ledger.withdraw(claimed, gen)
    assert ledger.get(claimed.id) is not None


def test_created_since(ledger):
    old, new = accepted(), accepted(2)
    ledger.put(old.model_copy(update={"created_at": utcnow() - timedelta(minutes=5)}), ABSENT)
    ledger.create(new)
    assert [s.id for s in ledger.created_since(utcnow() - timedelta(minutes=1))] == [new.id]


def at(state: JobState, seconds_ago: float) -> JobState:
    return state.model_copy(update={"created_at": utcnow() - timedelta(seconds=seconds_ago)})


def test_a_requesters_jobs_newest_first_page_by_page(ledger):
    mine = [at(accepted(), seconds_ago=100 - i) for i in range(7)]  # the last is the newest
    for state in mine:
        ledger.create(state)
    for other in (accepted(institution_id=2), at(accepted(), 5).model_copy(update={"user_id": 8})):
        ledger.create(other)
    newest_first = [s.id for s in reversed(mine)]
    seen, after = [], None
    while True:
        page, after = ledger.jobs_of(1, 7, limit=3, after=after)
        seen += [s.id for s in page]
        if after is None:
            break
    assert seen == newest_first
    first, after = ledger.jobs_of(1, 7, limit=7)
    assert [s.id for s in first] == newest_first and after is None  # no empty page to follow


def test_listing_by_status_and_skipping_what_has_no_record(ledger):
    states = [at(accepted(), seconds_ago=10 - i) for i in range(5)]
    for state in states:
        ledger.create(state)
    _, gen = ledger.get(states[1].id)
    ledger.put(states[1].claimed("w"), gen)
    assert ledger.withdraw(states[2], ledger.get(states[2].id)[1])  # record and entry gone
    ledger.storage.delete("jobs/" + states[3].id + ".json")  # an entry whose record is not written yet
    running, after = ledger.jobs_of(1, 7, limit=1, status=Status.running)
    assert [s.id for s in running] == [states[1].id] and after is not None
    assert ledger.jobs_of(1, 7, limit=1, after=after, status=Status.running) == ([], None)
    assert [s.id for s in ledger.jobs_of(1, 7, limit=10)[0]] == [states[4].id, states[1].id, states[0].id]


def test_listing_reads_only_the_requesters_own_index(ledger, tmp_path):
    """Its cost cannot grow with other users' jobs: every storage call it makes stays under the
    requester's prefix or reads one of their records (bench/history_bench.py times it)."""
    mine = [accepted() for _ in range(3)]
    for i in range(300):
        ledger.create(accepted(institution_id=2 + i % 7).model_copy(update={"user_id": 100 + i}))
    for state in mine:
        ledger.create(state)
    calls = []
    storage = ledger.storage

    class Watching:
        def __getattr__(self, name):
            method = getattr(storage, name)

            def watched(key, *args, **kwargs):
                calls.append((name, key))
                return method(key, *args, **kwargs)

            return watched

    found, _ = Ledger(Watching()).jobs_of(1, 7, limit=20)
    assert sorted(s.id for s in found) == sorted(s.id for s in mine)
    own = {f"jobs/{s.id}.json" for s in mine}
    assert calls and all(key == "history/1/7/" or key in own for _, key in calls), calls
