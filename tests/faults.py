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


class LosingAcks:
    """Some acks never reach the queue: the message comes back later, a duplicate delivery."""

    def __init__(self, inner, dice: Dice, p: float):
        self.inner, self.dice, self.p, self.lost = inner, dice, p, 0

    def ack(self, delivery) -> None:
        if self.dice(self.p):
            self.lost += 1
            return
        self.inner.ack(delivery)

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

    def close(self):
        self.inner.close()


def dying_renderer(inner, dice: Dice, p: float):
    """A renderer whose consumer dies mid-job with probability ``p``."""

    def render(report, plan, on_done):
        if dice(p):
            raise ConsumerDied()
        return inner(report, plan, on_done)

    return render
