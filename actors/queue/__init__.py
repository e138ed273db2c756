"""Job queue backends: publish a job, lease it to a consumer, ack / retry / dead-letter it."""

from __future__ import annotations

from actors.queue.base import PUBLISH_TIMEOUT, Delivery, JobQueue, QueueUnavailable
from actors.registry import backend_for

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "local": "actors.queue.local:LocalQueue",
    "pubsub": "actors.queue.pubsub:PubSubQueue",
}


def open_queue(url: str) -> JobQueue:
    return backend_for(url, BACKENDS)(url)


def check_url(url: str) -> None:
    """Raise ValueError saying what is wrong with a queue URL or its options, opening nothing."""
    backend_for(url, BACKENDS).check_url(url)


__all__ = ["PUBLISH_TIMEOUT", "Delivery", "JobQueue", "QueueUnavailable", "check_url", "open_queue"]
