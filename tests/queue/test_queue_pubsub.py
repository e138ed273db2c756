"""The ``pubsub://`` queue against Google's Pub/Sub emulator: leases, redelivery, flow control,
dead letters, and the consumer's delivery guarantees end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import date

import pytest

from actors.config.settings import load_settings
from actors.job.cancel import withdraw
from actors.job.consumer import JobRunner
from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, CatalogJobV1, utcnow
from actors.job.state import Status
from actors.job.submit import submit
from actors.notify import open_notifier
from actors.queue import Delivery, open_queue, pubsub
from actors.queue.pubsub import PubSubConfig, PubSubQueue
from actors.queue.pubsub_admin import ensure_topology
from actors.report.render import render_serially
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.support.jobs import catalog_job

PROJECT = "catalog-test"
ACK_DEADLINE = 10  # the emulator's (and Pub/Sub's) shortest ack deadline; also the tests' lease


@pytest.fixture(scope="session")
def emulator(pubsub_emulator) -> str:
    return pubsub_emulator


@pytest.fixture
def url(emulator) -> str:
    """A fresh topic, subscription and dead-letter topic; retries with almost no backoff, and
    dead-lettered after Pub/Sub's smallest number of delivery attempts."""
    name = uuid.uuid4().hex[:12]
    url = f"pubsub://{PROJECT}/jobs-{name}?subscription=worker-{name}&max_delivery_attempts=5"
    ensure_topology(url, ack_deadline_seconds=ACK_DEADLINE, min_backoff_seconds=0, max_backoff_seconds=1)
    return url


@pytest.fixture
def make(url):
    """Opens queues on the test's subscription (each a consumer process) and closes them after."""
    opened: list[PubSubQueue] = []

    def make(**options: int) -> PubSubQueue:
        queue = PubSubQueue(url + "".join(f"&{k}={v}" for k, v in options.items()))
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.close()


def take(queue: PubSubQueue, n: int, timeout: float = 15) -> list[Delivery]:
    """Exactly ``n`` deliveries, or fail."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += queue.pull(n - len(got), ACK_DEADLINE, wait_seconds=0.5)
    assert len(got) == n, f"expected {n} deliveries within {timeout}s, got {got}"
    return got


def dead_letters(url: str, n: int, timeout: float = 15) -> list[tuple[bytes, dict[str, str]]]:
    """What reached the dead-letter subscription (acked, so each test reads its own)."""
    from google.cloud import pubsub_v1

    config = PubSubConfig.from_url(url)
    got: list[tuple[bytes, dict[str, str]]] = []
    deadline = time.monotonic() + timeout
    with pubsub_v1.SubscriberClient() as client:
        path = config.subscription_path(config.dead_letter_subscription)
        while len(got) < n and time.monotonic() < deadline:
            response = client.pull(subscription=path, max_messages=10, timeout=5)
            if response.received_messages:
                client.acknowledge(subscription=path, ack_ids=[m.ack_id for m in response.received_messages])
            got += [(m.message.data, dict(m.message.attributes)) for m in response.received_messages]
    assert len(got) == n, f"expected {n} dead letters within {timeout}s, got {got}"
    return got


def test_url_options_and_defaults():
    config = PubSubConfig.from_url("pubsub://my-project")
    assert (
        config.topic,
        config.subscription,
        config.dead_letter_topic,
        config.dead_letter_subscription,
        config.max_delivery_attempts,
        config.max_messages,
    ) == (
        "generate-report-catalog-topic",
        "catalog-worker",
        "generate-report-catalog-topic-dead-letter",
        "generate-report-catalog-topic-dead-letter-sub",
        10,
        2,
    )
    config = PubSubConfig.from_url(
        "pubsub://p/jobs?subscription=worker&dead_letter_topic=dead"
        "&dead_letter_subscription=dead-sub&max_delivery_attempts=7&max_messages=4"
    )
    assert config == PubSubConfig("p", "jobs", "worker", "dead", "dead-sub", 7, 4)
    assert config.subscription_path("worker") == "projects/p/subscriptions/worker"
    for bad, message in (
        ("pubsub:///jobs", "expected pubsub://"),
        ("pubsub://p/jobs?subscriptoin=w", "unknown pubsub:// option.s. subscriptoin"),
        ("pubsub://p?max_delivery_attempts=3", "5..100"),
        ("pubsub://p?max_delivery_attempts=ten", "whole number, not 'ten'"),
        ("pubsub://p?max_messages=0", "at least 1"),
        ("pubsub://p/jobs?subscription=", "subscription '' is not a Pub/Sub name"),
        ("pubsub://p/1jobs", "topic '1jobs'"),
        ("pubsub://p/jobs?dead_letter_topic=goog-x", "dead_letter_topic 'goog-x'"),
    ):
        with pytest.raises(ValueError, match=message):
            PubSubConfig.from_url(bad)


def test_registered_and_publish_returns_the_message_ids(url):
    queue = open_queue(url)
    try:
        assert isinstance(queue, PubSubQueue)
        ids = [queue.publish(b"a"), queue.publish(b"b")]
        assert len(set(ids)) == 2 and all(isinstance(i, str) and i for i in ids)
        got = take(queue, 2)
        assert {(d.message_id, d.data, d.attempt) for d in got} == {(ids[0], b"a", 1), (ids[1], b"b", 1)}
        for d in got:
            queue.ack(d)
    finally:
        queue.close()


def test_nack_redelivers_with_the_next_attempt_after_the_delay(make):
    queue = make()
    job_id = queue.publish(b"job")
    [first] = take(queue, 1)
    queue.nack(first, delay_seconds=0)
    [second] = take(queue, 1)
    assert (second.message_id, second.attempt) == (job_id, 2) and second.token != first.token
    queue.ack(first)  # a stale token: ignored, the message is still held under its new lease
    queue.nack(second, delay_seconds=4)
    assert queue.pull(1, ACK_DEADLINE, wait_seconds=3) == []  # the delay is honoured...
    [third] = take(queue, 1)  # ...and then it is back
    assert third.attempt == 3
    queue.ack(third)


def test_leases_acked_extended_dead_lettered_and_abandoned_messages(url, make, monkeypatch):
    """Once the client stops renewing leases (here after 1 s, as for a job running past
    MAX_LEASE_SECONDS), only explicit extends hold a message: the abandoned one comes back after
    its lease, the extended one does not, and acked or dead-lettered ones are gone for good.

    (The consumer that dies is simulated this way because the emulator as shipped never notices
    a closed streaming pull (see tests/support/emulators.py): it keeps sending redeliveries down the dead
    stream, delaying them by whole extra ack deadlines.)"""
    monkeypatch.setattr(pubsub, "MAX_LEASE_SECONDS", 1)
    queue = make(max_messages=4)
    ids = {queue.publish(data): data for data in (b"extended", b"acked", b"abandoned", b"garbage")}
    got = {d.data: d for d in take(queue, 4)}
    assert {(ids[d.message_id], d.attempt) for d in got.values()} == {(data, 1) for data in ids.values()}
    queue.ack(got[b"acked"])
    queue.dead_letter(got[b"garbage"], "unparseable: not JSON")
    [(data, attributes)] = dead_letters(url, 1)
    assert data == b"garbage" and attributes["reason"] == "unparseable: not JSON"
    assert ids[attributes["original_message_id"]] == b"garbage" and attributes["delivery_attempt"] == "1"

    back: list[Delivery] = []
    came_back: float | None = None
    give_up = time.monotonic() + 4 * ACK_DEADLINE
    while came_back is None or time.monotonic() < came_back + 3:  # what else was due comes with it
        assert time.monotonic() < give_up, "the abandoned message was never redelivered"
        queue.extend(got[b"extended"], 2 * ACK_DEADLINE)  # the heartbeat of a long job
        for d in queue.pull(4, ACK_DEADLINE, wait_seconds=2):
            back.append(d)
            queue.ack(d)
            came_back = time.monotonic()
    assert [(d.data, d.attempt, d.message_id) for d in back] == [(b"abandoned", 2, got[b"abandoned"].message_id)]
    queue.ack(got[b"extended"])


KILLED_CONSUMER = """
import sys, time
from actors.queue.pubsub import PubSubQueue
queue = PubSubQueue(sys.argv[1])
while not (got := queue.pull(1, float(sys.argv[2]), wait_seconds=1)):
    pass
print(got[0].message_id, flush=True)
time.sleep(600)  # killed while holding it
"""


def test_a_killed_consumer_process_has_its_message_back_after_one_lease(url, make, pubsub_emulator_closing_streams):
    """A consumer process killed while holding a message (SIGKILL: no nack, no close) stops
    renewing its lease, so the message is delivered again one lease after it died; and the dead
    process's stream takes nothing published after the death."""
    victim = make().publish(b"victim")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CONSUMER, url, str(ACK_DEADLINE)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == victim
    finally:
        child.kill()
        child.wait()
    killed = time.monotonic()
    queue = make(max_messages=4)
    later = {queue.publish(f"later-{i}".encode()): time.monotonic() for i in range(5)}
    came: dict[str, tuple[float, int]] = {}
    while victim not in came and time.monotonic() < killed + 3 * ACK_DEADLINE:
        for d in queue.pull(4, ACK_DEADLINE, wait_seconds=0.5):
            came[d.message_id] = (time.monotonic(), d.attempt)
            queue.ack(d)
    assert set(came) == set(later) | {victim}
    assert all(came[m][0] - published < 3 for m, published in later.items()), "a dead stream held a message back"
    back, attempt = came[victim]
    assert attempt == 2 and ACK_DEADLINE - 2 < back - killed < ACK_DEADLINE + 4  # one lease, not two


def test_flow_control_bounds_the_messages_handed_out(make):
    queue = make(max_messages=2)
    ids = {queue.publish(f"m{i}".encode()) for i in range(10)}
    seen: list[Delivery] = []
    while len(seen) < 10:
        outstanding = take(queue, 2)
        outstanding += queue.pull(10, ACK_DEADLINE, wait_seconds=0.5)  # none while two are out
        assert len(outstanding) <= 2
        seen += outstanding
        for d in outstanding:
            queue.ack(d)
    assert {d.message_id for d in seen} == ids and len(seen) == 10


def test_subscription_dead_letters_after_max_delivery_attempts(url, make):
    # Verified supported by the emulator (google-cloud-sdk pubsub-emulator): delivery_attempt is
    # counted and the dead-letter policy applied.
    queue = make()
    job_id = queue.publish(b"poison")
    for attempt in range(1, 6):
        [d] = take(queue, 1)
        assert (d.message_id, d.attempt) == (job_id, attempt)
        queue.nack(d, delay_seconds=0)
    [(data, attributes)] = dead_letters(url, 1)
    assert data == b"poison" and attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert queue.pull(1, ACK_DEADLINE, wait_seconds=3) == []


def test_ensure_topology_is_idempotent_and_converges(url):
    from google.cloud import pubsub_v1

    config = PubSubConfig.from_url(url)
    ensure_topology(url, ack_deadline_seconds=ACK_DEADLINE, min_backoff_seconds=0, max_backoff_seconds=1)
    ensure_topology(url.replace("max_delivery_attempts=5", "max_delivery_attempts=7"), ack_deadline_seconds=20)
    with pubsub_v1.SubscriberClient() as client:
        sub = client.get_subscription(subscription=config.subscription_path(config.subscription))
    assert sub.dead_letter_policy.max_delivery_attempts == 7 and sub.ack_deadline_seconds == 20
    assert sub.retry_policy.maximum_backoff.total_seconds() == 600
    ensure_topology(url, ack_deadline_seconds=ACK_DEADLINE, retry_policy=False)
    with pubsub_v1.SubscriberClient() as client:
        sub = client.get_subscription(subscription=config.subscription_path(config.subscription))
    assert "retry_policy" not in sub and sub.dead_letter_policy.max_delivery_attempts == 5
    other = f"pubsub://{PROJECT}/other-{uuid.uuid4().hex[:8]}?subscription={config.subscription}"
    with pytest.raises(ValueError, match="cannot change topic"):
        ensure_topology(other)


def test_pull_reports_a_missing_subscription(emulator):
    queue = PubSubQueue(f"pubsub://{PROJECT}/nowhere?subscription=missing-{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(RuntimeError, match="does not exist"):
            for _ in range(10):
                queue.pull(1, ACK_DEADLINE, wait_seconds=1)
    finally:
        queue.close()


# --- the consumer on Pub/Sub ------------------------------------------------------------------


class AckLostOnce:
    """Pub/Sub acks are best effort: the first one is 'lost' (the message is released instead),
    so the same message is delivered again, as after a real lost ack."""

    def __init__(self, inner: PubSubQueue):
        self.inner, self.lost, self.pulled = inner, False, []

    def pull(self, *args) -> list[Delivery]:
        got = self.inner.pull(*args)
        self.pulled += got
        return got

    def ack(self, delivery: Delivery) -> None:
        if self.lost:
            self.inner.ack(delivery)
        else:
            self.lost = True
            self.inner.nack(delivery, 0)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture
def consumer(url, tmp_path, warehouse):
    settings = load_settings(
        data_dir=tmp_path,
        queue_url=url,
        warehouse_url=f"duckdb://{warehouse}",
        jwt_secret="x" * 32,
        lease_seconds=ACK_DEADLINE,
    )
    queue = PubSubQueue(url)
    source = open_warehouse(settings.warehouse_url)

    def runner(queue=queue) -> JobRunner:
        return JobRunner(
            settings.runner,
            queue,
            open_storage(settings.storage_url, settings.links),
            source,
            open_notifier(settings.notify_url, settings.notify),
        )

    def outbox() -> list[dict]:
        path = settings.outbox_path
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    yield settings, queue, runner, outbox
    queue.close()
    source.close()


def job(**kw) -> CatalogJobV1:
    """A version-1 message: its job id is the message id Pub/Sub assigns."""
    values = dict(
        institution_id=1,
        user_id=7,
        subdomain="demo",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
        requested_at=utcnow(),
    )
    return CatalogJobV1(**{**values, **kw})


def test_consumer_completes_jobs_dead_letters_garbage_and_acks(url, consumer):
    settings, queue, runner, outbox = consumer
    r = runner()
    first = queue.publish(job().to_bytes())
    assert r.run_once(wait_seconds=15)
    [note] = outbox()
    assert (note["jobId"], note["status"], note["rows"]) == (first, "done", 16)

    garbage = queue.publish(b"{not json")
    assert r.run_once(wait_seconds=15)
    [(data, attributes)] = dead_letters(url, 1)
    assert data == b"{not json" and attributes["original_message_id"] == garbage
    assert attributes["reason"].startswith("unparseable")

    second = queue.publish(job(user_id=8).to_bytes())
    assert r.run_once(wait_seconds=15)
    assert [(n["jobId"], n["status"]) for n in outbox()] == [(first, "done"), (second, "done")]
    # All three were acked: nothing comes back once their ack deadlines have passed.
    assert not r.run_once(wait_seconds=ACK_DEADLINE + 3)
    assert len(outbox()) == 2


def test_consumer_redelivered_job_gives_one_notification(consumer):
    settings, queue, runner, outbox = consumer
    lossy = AckLostOnce(queue)
    r = runner(lossy)
    job_id = queue.publish(job().to_bytes())
    assert r.run_once(wait_seconds=15)
    assert r.run_once(wait_seconds=15)  # the same message again: already notified, acked without work
    assert [(d.message_id, d.attempt) for d in lossy.pulled] == [(job_id, 1), (job_id, 2)]
    assert [n["jobId"] for n in outbox()] == [job_id]
    assert len(list((settings.data_dir / "files").rglob("*.xlsx"))) == 1
    assert not r.run_once(wait_seconds=2)


def test_a_running_job_canceled_is_acked_and_never_comes_back(consumer):
    """SPEC §2a's cancel on Pub/Sub: the job stops mid-render, ends canceled with no file and no
    notification, and its message is acked (nothing is delivered again after its deadline)."""
    settings, queue, _, outbox = consumer
    storage = open_storage(settings.storage_url, settings.links)
    ledger = Ledger(storage)

    def slow_render(*args, **kwargs):
        time.sleep(2)  # a long chunk: the cancel arrives while it renders
        return render_serially(*args, **kwargs)

    r = JobRunner(
        settings.runner,
        queue,
        storage,
        open_warehouse(settings.warehouse_url),
        open_notifier(settings.notify_url, settings.notify),
        slow_render,
    )
    job = catalog_job()
    submit(ledger, queue, job)
    thread = threading.Thread(target=r.run_once, kwargs={"wait_seconds": 15})
    thread.start()
    deadline = time.monotonic() + 30
    while ledger.get(job.job_id)[0].progress < 0.2 and time.monotonic() < deadline:  # rendering
        time.sleep(0.05)
    canceled_at = time.monotonic()
    assert withdraw(ledger, *ledger.get(job.job_id)).status is Status.canceled
    thread.join(15)
    assert not thread.is_alive() and time.monotonic() - canceled_at < 5
    assert ledger.get(job.job_id)[0].status is Status.canceled
    assert outbox() == [] and not list((settings.data_dir / "files").rglob("*.xlsx"))
    assert not r.run_once(wait_seconds=ACK_DEADLINE + 3)


def test_job_ids_stay_unique_when_the_emulator_numbers_messages_afresh(own_pubsub_emulator, tmp_path, warehouse):
    """The emulator restarts its message ids at 1. A job accepted after a restart (and a new
    queue-setup) must be a new job with its own file and notification, not pass for the job
    that had its id before."""
    url = f"pubsub://{PROJECT}/jobs-restart?subscription=worker-restart&max_delivery_attempts=5"
    settings = load_settings(
        data_dir=tmp_path,
        queue_url=url,
        warehouse_url=f"duckdb://{warehouse}",
        jwt_secret="x" * 32,
        lease_seconds=ACK_DEADLINE,
    )
    storage, source = open_storage(settings.storage_url, settings.links), open_warehouse(settings.warehouse_url)
    ledger = Ledger(storage)
    accepted = []
    for user_id, start in ((7, date(2025, 1, 1)), (8, date(2025, 3, 1))):
        ensure_topology(url, ack_deadline_seconds=ACK_DEADLINE, retry_policy=False)
        queue = PubSubQueue(url)
        one = catalog_job(user_id=user_id, start_date=start)
        submit(ledger, queue, one)
        accepted.append(one)
        assert JobRunner(
            settings.runner, queue, storage, source, open_notifier(settings.notify_url, settings.notify)
        ).run_once(wait_seconds=15)
        queue.close()
        own_pubsub_emulator.stop()
        own_pubsub_emulator.start()
    notes = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert [(n["jobId"], n["userId"], n["status"]) for n in notes] == [(j.job_id, j.user_id, "done") for j in accepted]
    assert {p.parent.name for p in (settings.data_dir / "files").rglob("*.xlsx")} == {j.job_id for j in accepted}
    for one in accepted:
        assert ledger.get(one.job_id)[0].job == CatalogJob.model_validate_json(one.to_bytes())
    source.close()


def until_it_says(call, words: str, timeout: float, within: float = 90) -> str:
    """The QueueUnavailable message ``call(timeout)`` raises once it contains ``words``."""
    from actors.queue import QueueUnavailable

    deadline = time.monotonic() + within
    while True:
        with pytest.raises(QueueUnavailable) as raised:
            call(timeout)
        if words in str(raised.value) or time.monotonic() > deadline:
            assert words in str(raised.value)
            return str(raised.value)
        assert "did not" in str(raised.value)


def test_an_outage_is_reported_in_bounded_time_and_leaves_no_job_behind(own_pubsub_emulator, tmp_path):
    """Publishing while Pub/Sub is down gives up after the publish timeout (the client's own
    retries stop then too), and the job's ledger record is withdrawn; the health check says
    first that Pub/Sub does not answer, then, once it is back without its topology, that the
    subscription is missing, and nothing once queue-setup has run again."""
    from actors.job.submit import Unavailable
    from actors.queue import QueueUnavailable

    url = f"pubsub://{PROJECT}/jobs-outage?subscription=worker-outage"
    ensure_topology(url, ack_deadline_seconds=ACK_DEADLINE, retry_policy=False)
    settings = load_settings(data_dir=tmp_path, queue_url=url, jwt_secret="x" * 32)
    ledger = Ledger(open_storage(settings.storage_url, settings.links))
    queue = PubSubQueue(url)
    try:
        queue.check(timeout=3)
        own_pubsub_emulator.stop()
        with pytest.raises(QueueUnavailable, match="did not answer"):
            queue.check(timeout=2)
        one = catalog_job()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="queue did not answer"):
            submit(ledger, queue, one, publish_timeout=2)
        assert time.monotonic() - started < 5
        assert ledger.get(one.job_id) is None
        own_pubsub_emulator.start()
        # Until the clients' channels reconnect it is still "did not answer"; never "ok".
        assert "subscription" in until_it_says(queue.check, "does not exist", timeout=5)
        assert "topic" in until_it_says(lambda timeout: queue.publish(b"{}", timeout), "does not exist", timeout=5)
        ensure_topology(url, ack_deadline_seconds=ACK_DEADLINE, retry_policy=False)
        queue.check(timeout=3)
        submit(ledger, queue, one, publish_timeout=5)
        assert ledger.get(one.job_id)[0].status.value == "queued"
    finally:
        queue.close()
