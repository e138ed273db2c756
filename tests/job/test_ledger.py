"""The ledger (actors/job/ledger.py) on file storage: compare-and-swap records and the index of
jobs not yet notified; no Ray."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from actors.job.ledger import ABSENT, Ledger
from actors.job.message import CatalogJob, new_job_id, utcnow
from actors.job.state import JobState
from actors.storage import LinkOptions, PreconditionFailed, open_storage


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(open_storage(f"file://{tmp_path}/files", LinkOptions(secret="s" * 32)))


def accepted(institution_id: int = 1) -> JobState:
    return JobState.accepted(
        CatalogJob(
            job_id=new_job_id(),
            institution_id=institution_id,
            user_id=7,
            subdomain="demo",
            start_date=date(2025, 1, 1),
            end_date=date(2025, 1, 31),
            timezone="UTC",
            requested_at=utcnow(),
        )
    )


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
    assert ledger.withdraw(untouched.id, gen)
    assert ledger.get(untouched.id) is None and ledger.pending(10) == []
    gen = ledger.create(claimed)
    ledger.put(claimed.claimed("w"), gen)
    assert not ledger.withdraw(claimed.id, gen)
    assert ledger.get(claimed.id) is not None


def test_created_since(ledger):
    old, new = accepted(), accepted(2)
    ledger.put(old.model_copy(update={"created_at": utcnow() - timedelta(minutes=5)}), ABSENT)
    ledger.create(new)
    assert [s.id for s in ledger.created_since(utcnow() - timedelta(minutes=1))] == [new.id]
