"""The reconciler: jobs whose messages the queue lost end done once and notified once, one
pass runs at a time across processes, and a pass reads only the index of pending jobs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from actors.job.consumer import JobRunner
from actors.job.ledger import PENDING, Ledger
from actors.job.message import utcnow
from actors.job.reconciler import Reconciler
from actors.job.state import JobState, Status
from actors.job.submit import submit
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.support.jobs import catalog_job

QUICK = {"lease_seconds": 2, "redrive_after_seconds": 3, "reconcile_seconds": 0.5}


def outbox(settings) -> list[dict]:
    path = settings.outbox_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@contextmanager
def running(settings, queue, storage, notifier=None):
    """The service without Ray: one consumer loop and one reconciler loop, as a replica runs them."""
    stop = threading.Event()
    runner = JobRunner(
        settings.runner,
        queue,
        storage,
        open_warehouse(settings.warehouse_url),
        notifier or open_notifier(settings.notify_url, settings.notify),
    )
    reconciler = Reconciler(settings.reconcile, queue, storage, holder=runner.worker_id)

    def consume():
        while not stop.is_set():
            try:
                runner.run_once(wait_seconds=0.2)
            except Exception:
                time.sleep(0.2)

    def reconcile():
        while not stop.wait(settings.reconcile_seconds):
            reconciler.tick()

    threads = [threading.Thread(target=f, daemon=True) for f in (consume, reconcile)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def wait_notified(settings, job_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(n["jobId"] == job_id for n in outbox(settings)):
        assert time.monotonic() < deadline, f"job {job_id} not notified within {timeout}s"
        time.sleep(0.2)
    time.sleep(settings.redrive_after_seconds + 2 * settings.reconcile_seconds)  # would a second one follow?


def test_a_queued_job_whose_message_was_deleted_ends_done_and_notified_once(tmp_path, settings_factory):
    settings = settings_factory(tmp_path, **QUICK)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    lost = catalog_job()
    submit(Ledger(storage), queue, lost)
    queue._db.execute("DELETE FROM messages")  # the queue loses it before any consumer saw it
    with running(settings, queue, storage):
        wait_notified(settings, lost.job_id)
    assert [n["jobId"] for n in outbox(settings)] == [lost.job_id]
    state, _ = Ledger(storage).get(lost.job_id)
    assert state.status is Status.done and state.notified and state.redrives >= 1 and state.attempts == 1
    assert Ledger(storage).pending(10) == [] and queue.pending() == 0


class FailingFirst:
    """A notification API that is down for the first ``n`` calls."""

    def __init__(self, inner, n: int):
        self.inner, self.n = inner, n

    def send(self, note) -> None:
        if self.n > 0:
            self.n -= 1
            raise ConnectionError("notification API unreachable (injected)")
        self.inner.send(note)


def test_a_done_job_whose_message_was_lost_while_notifying_is_notified_once(tmp_path, settings_factory):
    """The issue's case: the job is done, its notification failed and its message was handed
    back, then the queue lost it. The ledger said done, notified false, worker null forever."""
    settings = settings_factory(tmp_path, **QUICK)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    ledger = Ledger(storage)
    lost = catalog_job()
    submit(ledger, queue, lost)
    runner = JobRunner(
        settings.runner,
        queue,
        storage,
        open_warehouse(settings.warehouse_url),
        FailingFirst(open_notifier(settings.notify_url, settings.notify), 1),
    )
    assert runner.run_once(0)
    state, _ = ledger.get(lost.job_id)
    assert (state.status, state.notified, state.worker) == (Status.done, False, None)
    queue._db.execute("DELETE FROM messages")
    with running(settings, queue, storage):
        wait_notified(settings, lost.job_id)
    assert [(n["jobId"], n["status"]) for n in outbox(settings)] == [(lost.job_id, "done")]
    assert ledger.get(lost.job_id)[0].notified and ledger.pending(10) == []
    assert len(list((settings.data_dir / "files").rglob("*.xlsx"))) == 1


def test_a_job_whose_message_was_acked_behind_its_back_on_pubsub_is_redriven(
    tmp_path, settings_factory, pubsub_emulator
):
    """On the Pub/Sub emulator: another subscriber takes and acks the message first."""
    from google.cloud import pubsub_v1

    from actors.queue.pubsub import PubSubConfig
    from actors.queue.pubsub_admin import ensure_topology

    name = uuid.uuid4().hex[:10]
    url = f"pubsub://catalog-test/lost-{name}?subscription=lost-{name}"
    ensure_topology(url, ack_deadline_seconds=10, retry_policy=False)
    settings = settings_factory(
        tmp_path, queue_url=url, lease_seconds=10, redrive_after_seconds=10, reconcile_seconds=1
    )
    queue, storage = open_queue(url), open_storage(settings.storage_url, settings.links)
    lost = catalog_job()
    submit(Ledger(storage), queue, lost)
    config = PubSubConfig.from_url(url)
    with pubsub_v1.SubscriberClient() as thief:
        path = config.subscription_path(config.subscription)
        taken = thief.pull(subscription=path, max_messages=10, timeout=10).received_messages
        thief.acknowledge(subscription=path, ack_ids=[m.ack_id for m in taken])
    assert [json.loads(m.message.data)["jobId"] for m in taken] == [lost.job_id]
    try:
        with running(settings, queue, storage):
            wait_notified(settings, lost.job_id, timeout=60)
    finally:
        queue.close()
    assert [n["jobId"] for n in outbox(settings)] == [lost.job_id]
    state, _ = Ledger(storage).get(lost.job_id)
    assert state.status is Status.done and state.redrives >= 1 and Ledger(storage).pending(10) == []


def test_one_pass_at_a_time_and_a_dead_holder_is_replaced(tmp_path, settings_factory):
    settings = settings_factory(tmp_path, reconcile_seconds=0.3, lease_seconds=1, redrive_after_seconds=1)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    a, b = (Reconciler(settings.reconcile, queue, storage, holder=h) for h in ("a", "b"))
    assert a.tick() is not None and b.tick() is None and a.tick() is not None  # a renews, b waits
    passes: list[tuple[str, float, float]] = []
    stop = threading.Event()

    def loop(reconciler, holder):
        while not stop.is_set():
            started = time.monotonic()
            if reconciler.tick() is not None:
                passes.append((holder, started, time.monotonic()))
            time.sleep(0.05)

    threads = [threading.Thread(target=loop, args=(r, h)) for r, h in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    assert passes and {h for h, *_ in passes} == {"a"}  # the holder keeps it while it ticks
    time.sleep(3 * settings.reconcile_seconds + 0.1)  # a stops ticking: its lease runs out
    assert b.tick() is not None and a.tick() is None


def test_a_pass_reads_only_the_index_and_cleans_it(tmp_path, settings_factory):
    settings = settings_factory(tmp_path, **QUICK)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    ledger = Ledger(storage)
    for _ in range(50):  # finished long ago: out of the index
        old = catalog_job()
        ledger.put(JobState.accepted(old).model_copy(update={"status": Status.done, "notified": True}), "0")
    waiting = catalog_job()
    submit(ledger, queue, waiting)
    notified = catalog_job()
    submit(ledger, queue, notified)
    state, gen = ledger.get(notified.job_id)
    ledger.put(state.model_copy(update={"status": Status.done, "notified": True}), gen)  # its unlist was lost
    storage.write_json(PENDING + "withdrawn-long-ago", {}, None)  # an entry whose record never came

    reads = []

    class Counting:
        def read_json(self, key):
            reads.append(key)
            return storage.read_json(key)

        def __getattr__(self, name):
            return getattr(storage, name)

    reconciler = Reconciler(settings.reconcile, queue, Counting(), holder="r")
    first = reconciler.tick()
    assert (first.pending, first.redriven, first.unlisted) == (3, 0, 1)  # too young to judge the stray entry
    assert len([k for k in reads if k.startswith("jobs/")]) == 3
    time.sleep(settings.redrive_after_seconds + 0.2)
    second = reconciler.tick()
    assert (second.pending, second.redriven, second.unlisted) == (2, 1, 1)  # the waiting job, published again
    assert [job_id for job_id, _ in ledger.pending(10)] == [waiting.job_id]
    assert queue.pending() == 3  # its first message, the spare one, and the notified job's
    third = reconciler.tick()
    assert third.redriven == 0  # published a moment ago: quiet again only after redrive_after
    assert ledger.get(waiting.job_id)[0].redriven_at > utcnow() - timedelta(seconds=5)
