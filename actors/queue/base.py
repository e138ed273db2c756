"""The queue interface, shaped after Pub/Sub: leases (ack deadlines) rather than locks, so a
consumer that dies simply lets its lease run out and the job is delivered again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    message_id: str  # the job id
    data: bytes
    attempt: int  # 1 on first delivery
    token: str  # identifies this lease; acks with a stale token are ignored


class JobQueue(Protocol):
    def publish(self, data: bytes) -> str: ...

    def pull(self, max_messages: int, lease_seconds: float, wait_seconds: float) -> list[Delivery]: ...

    def extend(self, delivery: Delivery, lease_seconds: float) -> None: ...

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, delay_seconds: float) -> None: ...

    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...

    def close(self) -> None: ...
