"""Job queue backends: publish a job, lease it to a consumer, ack / retry / dead-letter it."""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from actors.queue.base import Delivery, JobQueue

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "local": "actors.queue.local:LocalQueue",
    "pubsub": "actors.queue.pubsub:PubSubQueue",
}


def open_queue(url: str) -> JobQueue:
    module, _, cls = BACKENDS[urlsplit(url).scheme].partition(":")
    return getattr(import_module(module), cls)(url)


__all__ = ["Delivery", "JobQueue", "open_queue"]
