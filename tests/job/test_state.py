"""The job's states and the named steps between them (actors/job/state.py); no Ray, no storage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from actors.job.message import CatalogJob
from actors.job.state import FOLLOWS, InvalidTransition, JobState, Status


def accepted() -> JobState:
    job = CatalogJob(
        job_id="01JOB",
        institution_id=1,
        user_id=7,
        subdomain="demo",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
        timezone="UTC",
        requested_at=datetime(2025, 6, 2, 12, 0, 0, 123456, tzinfo=UTC),
    )
    return JobState.accepted(job)


def done(state: JobState) -> JobState:
    return state.succeeded(
        rows=3, url="https://files/x", expires_at=None, object_key="k", timings={"query": 0.123456}, size_bytes=1234
    )


def test_the_happy_path():
    state = accepted()
    assert state.status is Status.queued and state.attempts == 0 and not state.finished
    running = state.claimed("w1")
    assert running.status is Status.running and running.worker == "w1" and running.attempts == 1
    finished = done(running.progressed(0.5))
    assert finished.status is Status.done and finished.progress == 1.0 and finished.finished_at
    assert finished.timings == {"query": 0.1235}
    assert finished.notified_now().notified


def test_a_retry_goes_back_to_the_queue_and_counts_the_next_claim():
    state = accepted().claimed("w1").retried()
    assert state.status is Status.queued and state.worker is None
    assert state.claimed("w2").attempts == 2


def test_a_dead_consumers_claim_is_taken_over():
    taken = accepted().claimed("dead").claimed("w2")
    assert taken.status is Status.running and taken.worker == "w2" and taken.attempts == 2


def test_a_final_failure_keeps_a_leftover_key():
    failed = accepted().claimed("w").failed("The report could not be generated: x.", leftover_key="k")
    assert failed.status is Status.failed and failed.object_key == "k" and failed.finished_at


def test_a_finished_job_is_held_only_to_notify():
    finished = done(accepted().claimed("w1"))
    held = finished.held("w2")
    assert held.status is Status.done and held.worker == "w2" and held.attempts == finished.attempts
    assert held.released().worker is None
    with pytest.raises(InvalidTransition):
        finished.notified_now().held("w3")
    with pytest.raises(InvalidTransition):
        accepted().held("w1")


@pytest.mark.parametrize(
    "step",
    [
        lambda s: s.retried(),
        lambda s: done(s),
        lambda s: s.failed("x", None),
        lambda s: s.notified_now(),
    ],
)
def test_steps_a_queued_job_cannot_take(step):
    with pytest.raises(InvalidTransition):
        step(accepted())


@pytest.mark.parametrize(
    "step",
    [
        lambda s: s.claimed("w"),
        lambda s: s.retried(),
        lambda s: done(s),
        lambda s: s.failed("x", None),
    ],
)
def test_a_finished_job_never_changes_status_again(step):
    for finished in (done(accepted().claimed("w")), accepted().claimed("w").failed("x", None)):
        with pytest.raises(InvalidTransition):
            step(finished)


def test_the_table_has_every_status():
    assert set(FOLLOWS) == set(Status)


def test_the_public_body_is_spec_shaped():
    body = done(accepted().claimed("w")).public().model_dump(mode="json", by_alias=True)
    assert list(body) == [
        "id", "type", "status", "progress", "rows", "url", "expiresAt", "error", "createdAt", "finishedAt",
        "parameters", "sizeBytes", "etaSeconds", "downloads",
    ]  # fmt: skip
    assert body["status"] == "done" and body["createdAt"] == "2025-06-02T12:00:00Z" and body["finishedAt"].endswith("Z")
    assert body["parameters"] == {"startDate": "2025-01-01", "endDate": "2025-12-31", "schoolIds": None,
                                  "format": "xlsx", "locale": "pt-BR", "timezone": "UTC"}  # fmt: skip
    assert (body["sizeBytes"], body["etaSeconds"], body["downloads"]) == (1234, None, 0)


def test_the_estimate_follows_the_runs_own_rate():
    running = accepted().claimed("w")
    start = running.started_at
    assert running.eta_seconds(start + timedelta(seconds=1)) is None  # no rate yet
    assert running.progressed(0.25).eta_seconds(start + timedelta(seconds=10)) == 30.0
    assert done(running).eta_seconds(start + timedelta(seconds=10)) is None


def test_downloads_are_counted_only_for_a_file():
    assert done(accepted().claimed("w")).downloaded().downloaded().downloads == 2
    with pytest.raises(InvalidTransition):
        accepted().claimed("w").downloaded()


def test_the_file_name_follows_the_locale():
    base = accepted().job
    assert base.file_name == "catalogo_2025-01-01_2025-12-31.xlsx"
    assert base.model_copy(update={"locale": "en"}).file_name == "catalog_2025-01-01_2025-12-31.xlsx"
    assert base.model_copy(update={"locale": "es"}).file_name == "catalogo_2025-01-01_2025-12-31.xlsx"


def test_a_message_takes_the_formats_and_locales_the_report_has():
    """Both lists come from the report (its writers, its wordings), not from copies in the message."""
    import pydantic

    from actors.report.formats import FORMATS
    from actors.report.wording import WORDINGS
    from tests.support.jobs import catalog_job

    for file_format in FORMATS:
        assert catalog_job(format=file_format).file_name.endswith("." + FORMATS[file_format].EXTENSION)
    assert {catalog_job(locale=locale).locale for locale in WORDINGS} == set(WORDINGS)
    for bad in ({"format": "pdf"}, {"locale": "fr"}):
        with pytest.raises(pydantic.ValidationError, match=next(iter(bad))):
            catalog_job(**bad)
