"""Fault injection around the real backends, for the counted fault run.

Each wrapper delegates to a real queue / storage / warehouse and fails on purpose, the way the
real thing fails: acks that never arrive, uploads refused for a while, a warehouse that is down,
a consumer process that dies mid-job (raised as ``ConsumerDied``, a BaseException, so nothing in
the consumer can catch it: the harness then drops that consumer and starts a fresh one).
"""

from __future__ import annotations

import random
import threading
import time


class ConsumerDied(BaseException):
    """The consumer process is gone: no ack, no nack, no ledger update after this point."""


class Dice:
    def __init__(self, seed: int):
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, p: float) -> bool:
        with self._lock:
            return self._random.random() < p


class FaultyQueue:
    """Some acks are lost, and consumers die holding a message. Either way the broker hands the
    message out again once its lease lapses: modelled as a release after one lease (a queue
    client that is still alive, like Pub/Sub's, would otherwise keep renewing the lease)."""

    def __init__(self, inner, dice: Dice, p_lost_ack: float, lease_seconds: float):
        self.inner, self.dice, self.p, self.lease = inner, dice, p_lost_ack, lease_seconds
        self.lost = 0
        self._held = threading.local()

    def pull(self, *args, **kw):
        got = self.inner.pull(*args, **kw)
        self._held.deliveries = list(got)
        return got

    def ack(self, delivery) -> None:
        self._settle(delivery)
        if self.dice(self.p):
            self.lost += 1
            self.inner.nack(delivery, delay_seconds=self.lease)
            return
        self.inner.ack(delivery)

    def nack(self, delivery, delay_seconds: float = 0) -> None:
        self._settle(delivery)
        self.inner.nack(delivery, delay_seconds)

    def dead_letter(self, delivery, reason: str) -> None:
        self._settle(delivery)
        self.inner.dead_letter(delivery, reason)

    def consumer_died(self) -> None:
        """The calling thread's consumer is gone: what it held comes back after a lease."""
        for delivery in getattr(self._held, "deliveries", []):
            self.inner.nack(delivery, delay_seconds=self.lease)
        self._held.deliveries = []

    def _settle(self, delivery) -> None:
        held = getattr(self._held, "deliveries", [])
        self._held.deliveries = [d for d in held if d.token != delivery.token]

    def __getattr__(self, name):
        return getattr(self.inner, name)


class FlakyStorage:
    """Uploads refused during outages (as a 503 from the object store would be)."""

    def __init__(self, inner, dice: Dice, p: float, outage_seconds: float = 1.0):
        self.inner, self.dice, self.p, self.outage = inner, dice, p, outage_seconds
        self.down_until, self.refused = 0.0, 0

    def put_file(self, *args, **kw):
        now = time.monotonic()
        if now >= self.down_until and self.dice(self.p):
            self.down_until = now + self.outage  # an outage starts
        if now < self.down_until:
            self.refused += 1
            raise ConnectionError("storage refused the upload (injected)")
        return self.inner.put_file(*args, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class FlakyWarehouse:
    """Transient failures at random; always down for the institutions in ``down_for``."""

    def __init__(self, inner, dice: Dice, p: float, down_for: set[int]):
        self.inner, self.dice, self.p, self.down_for = inner, dice, p, down_for
        self.failures = 0

    def fetch(self, query):
        if query.institution_id in self.down_for or self.dice(self.p):
            self.failures += 1
            raise ConnectionError("warehouse unreachable (injected)")
        return self.inner.fetch(query)

    def __getattr__(self, name):  # names, ranges, partitioning: from the real warehouse
        return getattr(self.inner, name)


def dying_renderer(inner, dice: Dice, p: float):
    """A renderer whose consumer dies mid-job with probability ``p``."""

    def render(partitions, plan, rows, columns, on_done, **format_options):
        if dice(p):
            raise ConsumerDied()
        return inner(partitions, plan, rows, columns, on_done, **format_options)

    return render
