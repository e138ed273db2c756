"""The embedded queue: durable, lease-based at-least-once, dead letters."""

from __future__ import annotations

import time

from actors.queue.local import LocalQueue


def q(tmp_path) -> LocalQueue:
    return LocalQueue(f"local://{tmp_path}/queue")


def test_publish_survives_reopen_and_ids_are_unique(tmp_path):
    a = q(tmp_path)
    ids = [a.publish(f"m{i}".encode()) for i in range(3)]
    a.close()
    b = q(tmp_path)  # a new process would see the same
    got = b.pull(5, lease_seconds=30, wait_seconds=0)
    assert [d.message_id for d in got] == ids and len(set(ids)) == 3
    assert [d.data for d in got] == [b"m0", b"m1", b"m2"]


def test_unacked_message_is_redelivered_after_its_lease(tmp_path):
    queue = q(tmp_path)
    queue.publish(b"job")
    first = queue.pull(1, lease_seconds=0.5)[0]
    assert queue.pull(1, lease_seconds=0.5) == []  # leased: not handed out twice
    time.sleep(0.6)
    again = queue.pull(1, lease_seconds=30)[0]
    assert again.message_id == first.message_id and again.attempt == 2


def test_ack_with_stale_lease_is_ignored(tmp_path):
    queue = q(tmp_path)
    queue.publish(b"job")
    old = queue.pull(1, lease_seconds=0.2)[0]
    time.sleep(0.3)
    new = queue.pull(1, lease_seconds=30)[0]
    queue.ack(old)  # the consumer that lost its lease must not ack the new holder's delivery
    assert queue.pending() == 1
    queue.ack(new)
    assert queue.pending() == 0


def test_extend_keeps_the_lease(tmp_path):
    queue = q(tmp_path)
    queue.publish(b"job")
    d = queue.pull(1, lease_seconds=0.3)[0]
    queue.extend(d, 30)
    time.sleep(0.4)
    assert queue.pull(1, lease_seconds=1) == []


def test_nack_delays_and_dead_letter_sets_aside(tmp_path):
    queue = q(tmp_path)
    queue.publish(b"a")
    queue.publish(b"b")
    a = queue.pull(1, lease_seconds=30)[0]
    queue.nack(a, delay_seconds=0.3)
    b = queue.pull(1, lease_seconds=30)[0]
    assert b.data == b"b"
    queue.dead_letter(b, "unparseable")
    time.sleep(0.35)
    assert [d.data for d in queue.pull(5, lease_seconds=30)] == [b"a"]
    assert [(data, reason) for _, data, reason in queue.dead_letters()] == [(b"b", "unparseable")]


def test_pull_waits_for_a_message(tmp_path):
    queue = q(tmp_path)
    started = time.monotonic()
    assert queue.pull(1, lease_seconds=1, wait_seconds=0.5) == []
    assert time.monotonic() - started >= 0.5


def test_a_waiting_consumer_takes_a_job_published_elsewhere_at_once(tmp_path):
    """A publish on another connection wakes a waiting pull well before the 200 ms full poll."""
    import threading

    consumer, publisher = q(tmp_path), q(tmp_path)
    consumer.pull(1, wait_seconds=0)  # first lease attempt done: the next ones are the poll
    waits = []
    for _ in range(5):
        published = []
        timer = threading.Timer(0.05, lambda: published.append((publisher.publish(b"job"), time.monotonic())))
        timer.start()
        got = consumer.pull(1, lease_seconds=30, wait_seconds=2)
        timer.join()
        assert [d.message_id for d in got] == [published[0][0]]
        waits.append(time.monotonic() - published[0][1])
        consumer.ack(got[0])
    assert sorted(waits)[2] < 0.1, waits  # median: ~20 ms, not up to POLL_SECONDS


def test_a_publish_waits_for_a_locked_queue_only_as_long_as_it_is_allowed(tmp_path):
    import sqlite3

    import pytest

    from actors.queue import QueueUnavailable

    queue = q(tmp_path)
    holder = sqlite3.connect(tmp_path / "queue" / "queue.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match="unusable"):
            queue.publish(b"job", timeout=0.5)
        assert 0.4 < time.monotonic() - started < 3
        queue.check(timeout=1)  # reads still work: the queue is busy, not broken
    finally:
        holder.execute("ROLLBACK")
    assert queue.pull(1, 30, 0) == []
    queue.publish(b"job", timeout=0.5)
    holder.execute("DROP TABLE messages")
    with pytest.raises(QueueUnavailable, match="no such table"):
        queue.check(timeout=1)
