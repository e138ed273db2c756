"""The same request twice creates one job (actors/job/requests.py): Idempotency-Key replays and
identical requests in flight, on file:// and on gs:// (fake-gcs-server), racing included."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, utcnow
from actors.job.requests import KeyReused, Requests
from actors.job.state import JobState
from actors.storage import LinkOptions, open_storage
from tests.support.emulators import BUCKET
from tests.support.jobs import catalog_job


@pytest.fixture(params=["file", "gs"])
def requests(request, tmp_path, monkeypatch) -> Requests:
    if request.param == "file":
        url = f"file://{tmp_path}/files"
    else:
        emulator = request.getfixturevalue("gcs_emulator")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        url = f"gs://{BUCKET}/requests-{uuid.uuid4().hex[:8]}"
    return Requests(Ledger(open_storage(url, LinkOptions(secret="r" * 32))))


def asked(**changes) -> CatalogJob:
    return catalog_job(**changes)


def accept(requests: Requests, job: CatalogJob, key: str | None = None) -> str:
    """What the API does: an earlier answer, else claim and record."""
    if earlier := requests.earlier(job, key):
        return earlier
    claim = requests.claim(job, key)
    if claim.new:
        requests.ledger.create(JobState.accepted(job))
    return claim.job_id


def test_a_replayed_key_answers_with_the_first_job(requests):
    first = asked()
    assert accept(requests, first, "k-1") == first.job_id
    assert requests.earlier(asked(), "k-1") == first.job_id
    with pytest.raises(KeyReused):
        requests.earlier(asked(end_date=date(2025, 6, 30)), "k-1")
    assert requests.earlier(asked(user_id=8), "k-1") is None  # keys are the requester's own


def test_an_identical_request_in_flight_answers_with_it_and_a_finished_one_does_not(requests):
    first = asked(school_ids=[12, 10])
    accept(requests, first)
    assert requests.earlier(asked(school_ids=[10, 12]), None) == first.job_id  # same set of schools
    assert requests.earlier(asked(school_ids=[10]), None) is None
    assert requests.earlier(asked(timezone="America/Sao_Paulo", school_ids=[10, 12]), None) is None
    state, gen = requests.ledger.get(first.job_id)
    done = state.claimed("w").succeeded(rows=1, url="u", expires_at=None, object_key="k", timings={})
    requests.ledger.put(done, gen)
    again = asked(school_ids=[10, 12])
    assert accept(requests, again) == again.job_id  # the first is done: a new report


def test_a_key_expires_after_a_day(requests):
    first = asked()
    accept(requests, first, "daily")
    path = requests._key_path(first, "daily")
    record, gen = requests.storage.read_json(path)
    old = (utcnow() - timedelta(hours=25)).isoformat()
    requests.storage.write_json(path, record | {"createdAt": old}, gen)
    state, gen = requests.ledger.get(first.job_id)
    requests.ledger.put(state.claimed("w").failed("x", None), gen)
    later = asked(end_date=date(2025, 3, 31))
    assert accept(requests, later, "daily") == later.job_id


@pytest.mark.parametrize("key", ["race", None])
def test_racing_identical_requests_create_one_job(requests, key):
    jobs = [asked(school_ids=[3]) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda job: accept(requests, job, key), jobs))
    assert len(set(answers)) == 1 and answers[0] in {job.job_id for job in jobs}
    assert requests.ledger.get(answers[0]) is not None


def test_a_request_that_was_not_accepted_leaves_its_key_free(requests):
    job = asked()
    assert requests.claim(job, "retry-me").new
    requests.release(job, "retry-me")
    second = asked()
    assert accept(requests, second, "retry-me") == second.job_id
