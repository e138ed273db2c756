"""Notification backends: tell the requester their report is ready (or failed)."""

from __future__ import annotations

from actors.notify.base import Notification, NotificationRejected, Notifier, NotifyOptions
from actors.registry import backend_for

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "http": "actors.notify.http:HttpNotifier",
    "https": "actors.notify.http:HttpNotifier",
    "file": "actors.notify.outbox:OutboxNotifier",
}


def open_notifier(url: str, options: NotifyOptions | None = None) -> Notifier:
    return backend_for(url, BACKENDS)(url, options)


__all__ = ["BACKENDS", "Notification", "NotificationRejected", "Notifier", "NotifyOptions", "open_notifier"]
