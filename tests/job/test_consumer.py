"""The consumer's delivery guarantees with real queue, storage, warehouse and outbox files
(rendering serially: the Ray shell is exercised by the service tests)."""

from __future__ import annotations

import json
import time
from datetime import date
from urllib.parse import urlsplit

import pytest

from actors.job.consumer import JobRunner
from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, CatalogJobV1, utcnow
from actors.job.state import Status
from actors.job.submit import submit
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.conftest import ADMIN, STUDENT
from tests.support.data import expected_report
from tests.support.jobs import accept, catalog_job
from tests.support.workbook import read_both


class FailingWarehouse:
    def __init__(self, failures: int, inner):
        self.failures, self.inner, self.calls = failures, inner, 0

    def fetch(self, query):
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("warehouse unreachable")
        return self.inner.fetch(query)

    def __getattr__(self, name):  # names, ranges, partitioning: from the real warehouse
        return getattr(self.inner, name)


@pytest.fixture
def env(tmp_path, settings_factory):
    settings = settings_factory(tmp_path, max_delivery_attempts=3)
    queue = open_queue(settings.queue_url)
    storage = open_storage(settings.storage_url, settings.links)

    def runner(warehouse=None, worker_id=None):
        return JobRunner(
            settings.runner,
            queue,
            storage,
            warehouse or open_warehouse(settings.warehouse_url),
            open_notifier(settings.notify_url, settings.notify),
            worker_id=worker_id,
        )

    def outbox():
        path = settings.outbox_path
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return settings, queue, storage, runner, outbox


def files(settings):
    root = settings.data_dir / "files" / "catalog"
    return sorted(p for p in root.rglob("*.xlsx")) if root.exists() else []


def test_job_runs_to_done_with_file_link_and_notification(env):
    settings, queue, storage, runner, outbox = env
    job_id = accept(queue, storage)
    assert runner().run_once(wait_seconds=0)
    state, _ = Ledger(storage).get(job_id)
    assert state.status is Status.done and state.notified and state.rows == 16
    [note] = outbox()
    assert note["jobId"] == job_id and note["status"] == "done" and note["rows"] == 16
    assert note["fileName"] == "catalogo_2025-01-01_2025-12-31.xlsx"
    assert f"/catalog/1/{job_id}/catalogo_2025-01-01_2025-12-31.xlsx?expires=" in note["url"]
    [path] = files(settings)
    assert len(read_both(path)["Catálogo"]) == 17
    assert queue.pending() == 0


def test_the_report_is_in_the_time_zone_its_message_carries(env):
    """The zone is the request's, carried in the message: a consumer configured for UTC still
    counts the period and shows the dates of a São Paulo request in São Paulo."""
    settings, queue, storage, runner, _ = env
    assert settings.timezone == "UTC"
    job_id = accept(queue, storage, timezone="America/Sao_Paulo")
    assert runner().run_once(wait_seconds=0)
    assert Ledger(storage).get(job_id)[0].status is Status.done
    [path] = files(settings)
    rows = [r + [None] * (10 - len(r)) for r in read_both(path)["Catálogo"][1:]]
    expected = expected_report(
        1, date(2025, 1, 1), date(2025, 12, 31), subdomain="demo", student=STUDENT, admin=ADMIN, tz="America/Sao_Paulo"
    )
    assert rows == expected
    assert rows != expected_report(
        1, date(2025, 1, 1), date(2025, 12, 31), subdomain="demo", student=STUDENT, admin=ADMIN
    )


def test_duplicate_delivery_gives_one_file_and_one_notification(env):
    settings, queue, storage, runner, outbox = env
    again = catalog_job()
    submit(Ledger(storage), queue, again)
    r = runner()
    r.run_once(0)
    queue.publish(again.to_bytes())  # the same job again (at-least-once): e.g. the ack was lost
    r.run_once(0)
    runner(worker_id="another").run_once(0)
    assert len(outbox()) == 1 and len(files(settings)) == 1 and queue.pending() == 0


def test_consumer_that_dies_mid_job_is_replaced_after_its_lease(env):
    settings, queue, storage, runner, outbox = env
    job_id = accept(queue, storage)
    # A consumer takes the job and claims it, then dies (no heartbeat, no ack).
    dead = queue.pull(1, lease_seconds=settings.lease_seconds)[0]
    ledger = Ledger(storage)
    state, gen = ledger.get(job_id)
    ledger.put(state.model_copy(update={"status": Status.running, "worker": "dead-one", "heartbeat": utcnow()}), gen)
    assert not runner().run_once(0)  # still leased
    time.sleep(settings.lease_seconds + 1.1)
    assert runner(worker_id="survivor").run_once(0)
    state, _ = ledger.get(job_id)
    assert state.status is Status.done and state.worker == "survivor" and dead.attempt == 1
    assert len(outbox()) == 1


def test_transient_failure_is_retried_then_succeeds(env):
    settings, queue, storage, runner, outbox = env
    job_id = accept(queue, storage)
    flaky = FailingWarehouse(1, open_warehouse(settings.warehouse_url))
    r = runner(warehouse=flaky)
    r.run_once(0)
    assert Ledger(storage).get(job_id)[0].status is Status.queued and outbox() == []
    deadline = time.monotonic() + 10
    while not outbox() and time.monotonic() < deadline:
        r.run_once(0.2)
    assert [n["status"] for n in outbox()] == ["done"]


def test_failure_past_the_retry_budget_is_recorded_and_notified_once(env):
    settings, queue, storage, runner, outbox = env
    job_id = accept(queue, storage)
    broken = FailingWarehouse(99, open_warehouse(settings.warehouse_url))
    r = runner(warehouse=broken)
    deadline = time.monotonic() + 30
    while not outbox() and time.monotonic() < deadline:
        r.run_once(0.2)
    state, _ = Ledger(storage).get(job_id)
    assert state.status is Status.failed and state.notified and broken.calls == 3
    assert "warehouse" in state.error and "ConnectionError" not in state.error
    [note] = outbox()
    assert note["status"] == "failed" and note["url"] is None and note["error"] == state.error
    assert queue.pending() == 0 and files(settings) == []


@pytest.mark.parametrize(
    "payload", [b"not json", b'{"type": "catalog"}', b"\xff\xfe", b'{"type":"catalog","version":1,"institutionId":-1}']
)
def test_unparseable_message_is_dead_lettered_and_the_queue_keeps_flowing(env, payload):
    settings, queue, storage, runner, outbox = env
    queue.publish(payload)
    good = accept(queue, storage)
    r = runner()
    r.run_once(0)
    r.run_once(0)
    assert [d for _, d, _ in queue.dead_letters()] == [payload]
    assert [n["jobId"] for n in outbox()] == [good]


def test_version_1_message_is_a_job_under_its_message_id(env):
    settings, queue, storage, runner, outbox = env
    old = CatalogJobV1(
        institution_id=1,
        user_id=7,
        subdomain="demo",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
        requested_at=utcnow(),
    )
    message_id = queue.publish(old.to_bytes())
    assert runner().run_once(0)
    state, _ = Ledger(storage).get(message_id)
    assert state.status is Status.done and state.notified
    assert (state.job.job_id, state.job.version, state.job.timezone) == (message_id, 2, settings.timezone)
    assert [n["jobId"] for n in outbox()] == [message_id]
    assert [p.parent.name for p in files(settings)] == [message_id]


def test_a_reused_message_id_is_not_taken_for_the_earlier_job(env):
    """A queue that numbers messages afresh (the Pub/Sub emulator after a restart) hands a new
    version-1 request an id an earlier job has: it must not pass for that job, already done."""
    settings, queue, storage, runner, outbox = env
    first = CatalogJobV1(
        institution_id=1,
        user_id=7,
        subdomain="demo",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
        requested_at=utcnow(),
    )
    message_id = queue.publish(first.to_bytes())
    runner().run_once(0)
    other = first.model_copy(update={"user_id": 8, "start_date": date(2025, 3, 1)})
    queue._db.execute(
        "INSERT INTO messages (id, data, published_at) VALUES (?, ?, ?)", (message_id, other.to_bytes(), time.time())
    )
    runner().run_once(0)
    [(_, data, reason)] = queue.dead_letters()
    assert data == other.to_bytes() and "another request" in reason
    assert [n["userId"] for n in outbox()] == [7]


def test_a_message_without_its_ledger_record_is_dropped(env):
    """Version 2 records the job before publishing: a message with no record is one whose
    request was withdrawn (its publish timed out and the API answered 503)."""
    settings, queue, storage, runner, outbox = env
    queue.publish(catalog_job().to_bytes())
    assert runner().run_once(0)
    assert outbox() == [] and files(settings) == [] and queue.pending() == 0 and queue.dead_letters() == []


def test_the_ledger_record_is_written_before_the_message_is_published(env):
    settings, queue, storage, runner, outbox = env
    ledger = Ledger(storage)
    seen = []

    class Watching:
        def publish(self, data: bytes, *args) -> str:
            seen.append(ledger.get(CatalogJob.model_validate_json(data).job_id))
            return queue.publish(data, *args)

    accepted = catalog_job()
    submit(ledger, Watching(), accepted)
    [(state, _)] = seen
    assert state.status is Status.queued and state.job == CatalogJob.model_validate_json(accepted.to_bytes())


def test_a_dead_consumers_job_is_taken_over_one_lease_after_its_last_heartbeat(tmp_path, settings_factory):
    """The message comes back when its queue lease ends, but the dead consumer's last heartbeat
    (its claim's progress) is younger than that: the survivor must come back exactly when the
    claim is stale, not a whole lease later (which made recovery take up to two leases)."""
    settings = settings_factory(tmp_path, lease_seconds=5)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    job_id = accept(queue, storage)
    queue.pull(1, lease_seconds=settings.lease_seconds)  # taken, then never extended or acked
    time.sleep(1)
    ledger = Ledger(storage)
    state, gen = ledger.get(job_id)
    ledger.put(state.model_copy(update={"status": Status.running, "worker": "dead-one", "heartbeat": utcnow()}), gen)
    last_beat = time.monotonic()
    survivor = JobRunner(
        settings.runner,
        queue,
        storage,
        open_warehouse(settings.warehouse_url),
        open_notifier(settings.notify_url, settings.notify),
        worker_id="survivor",
    )
    while ledger.get(job_id)[0].worker != "survivor" and time.monotonic() - last_beat < 3 * settings.lease_seconds:
        survivor.run_once(0.1)
    taken_after = time.monotonic() - last_beat
    assert settings.lease_seconds <= taken_after <= settings.lease_seconds + 2, taken_after
    assert ledger.get(job_id)[0].status is Status.done


@pytest.mark.parametrize("message_id", ["../../outside", "a/b", "x" * 200, "sp ace", ""])
def test_a_message_whose_id_cannot_name_a_record_is_dead_lettered(env, message_id):
    """A version-1 message is a job under its message id; one that is no valid storage key is
    set aside at once (it was retried forever), and nothing is written for it."""
    settings, queue, storage, runner, outbox = env
    old = CatalogJobV1(
        institution_id=1,
        user_id=7,
        subdomain="demo",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
        requested_at=utcnow(),
    )
    queue._db.execute(
        "INSERT INTO messages (id, data, published_at) VALUES (?, ?, ?)", (message_id, old.to_bytes(), time.time())
    )
    assert runner().run_once(0)
    [(_, data, reason)] = queue.dead_letters()
    assert data == old.to_bytes() and reason.startswith("unparseable") and "job_id" in reason, reason
    assert queue.pending() == 0 and outbox() == [] and files(settings) == []
    assert sorted(p.name for p in settings.data_dir.rglob("*") if p.is_file() and "queue" not in p.parts) == []


def test_a_missing_warehouse_fails_the_job_after_its_attempts_with_one_notification(env, tmp_path):
    """The consumer opens the warehouse when a job needs it: a missing file is the job's failure
    (retried, then failed with a readable error and one notification), and once the file is
    back the next job runs."""
    from actors.warehouse.on_demand import OnDemandWarehouse

    settings, queue, storage, runner, outbox = env
    missing = tmp_path / "moved-away.duckdb"
    r = runner(warehouse=OnDemandWarehouse(f"duckdb://{missing}"))
    first = accept(queue, storage)
    deadline = time.monotonic() + 30
    while not outbox() and time.monotonic() < deadline:
        r.run_once(0.2)
    state, _ = Ledger(storage).get(first)
    assert state.status is Status.failed and state.attempts == settings.max_delivery_attempts
    assert state.error == "The report could not be generated: the data warehouse could not be queried."
    assert [n["status"] for n in outbox()] == ["failed"]
    missing.symlink_to(urlsplit(settings.warehouse_url).path)
    second = accept(queue, storage)
    r.run_once(0)
    assert Ledger(storage).get(second)[0].status is Status.done


def test_readiness_checks_are_reused_for_a_while(env, monkeypatch):
    """Probes every few seconds must not each open a warehouse session; a fresh report is made
    once the previous one is older than the reuse period."""
    import actors.job.readiness as readiness

    settings, queue, storage, runner, outbox = env
    opened = []
    real = readiness.open_warehouse
    monkeypatch.setattr(readiness, "open_warehouse", lambda url: opened.append(url) or real(url))
    checks = readiness.BackendChecks(queue, storage, settings.warehouse_url, reuse=0.5)
    assert checks.report() == {"queue": None, "storage": None, "warehouse": None}
    checks.report()
    assert len(opened) == 1
    time.sleep(0.6)
    checks.report()
    assert len(opened) == 2
