"""The queue interface, shaped after Pub/Sub: leases (ack deadlines) rather than locks, so a
consumer that dies simply lets its lease run out and the job is delivered again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

PUBLISH_TIMEOUT = 10.0  # seconds a publish may take before the queue counts as unavailable


@dataclass(frozen=True)
class Delivery:
    message_id: str  # a delivery handle; the job id travels in the message
    data: bytes
    attempt: int  # 1 on first delivery
    token: str  # identifies this lease; acks with a stale token are ignored


class QueueUnavailable(Exception):
    """The queue did not take a message in time, or cannot serve consumers; says why."""


class JobQueue(Protocol):
    def publish(self, data: bytes, timeout: float = PUBLISH_TIMEOUT) -> str:
        """The message id, once the message is stored; QueueUnavailable after ``timeout``."""
        ...

    def check(self, timeout: float) -> None:
        """Raise QueueUnavailable unless publishers and consumers can use the queue."""
        ...

    def pull(self, max_messages: int, lease_seconds: float, wait_seconds: float) -> list[Delivery]: ...

    def extend(self, delivery: Delivery, lease_seconds: float) -> None: ...

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, delay_seconds: float) -> None: ...

    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...

    def close(self) -> None: ...
