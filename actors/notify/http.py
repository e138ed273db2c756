"""``http(s)://…``: the monolith's notification API. ``Idempotency-Key`` lets it drop a repeat."""

from __future__ import annotations

import httpx
import stamina

from actors.notify.base import Notification, NotificationRejected, NotifyOptions


class _Retryable(Exception):
    pass


class HttpNotifier:
    """POST with timeouts; 5xx, timeouts and connection errors retried with jittered backoff."""

    def __init__(self, url: str, options: NotifyOptions | None = None):
        options = options or NotifyOptions()
        self.url = url
        headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
        self._client = httpx.Client(timeout=options.timeout_seconds, headers=headers)
        self._retry = stamina.retry_context(
            on=(httpx.TransportError, _Retryable), attempts=options.attempts, wait_max=options.max_wait_seconds
        )

    def send(self, note: Notification) -> None:
        for attempt in self._retry:
            with attempt:
                resp = self._client.post(self.url, json=note.body(), headers={"Idempotency-Key": note.job_id})
                if resp.status_code >= 500:
                    raise _Retryable(f"notification API answered {resp.status_code}")
                if resp.status_code >= 400:
                    raise NotificationRejected(f"notification API answered {resp.status_code}: {resp.text[:200]}")
