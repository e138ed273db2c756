"""Tell the requester their report is ready (or failed): the monolith's HTTP API, or a local
outbox file when no URL is configured. Idempotency-Key lets the receiver drop a repeat."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

import httpx
import stamina
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from actors.job import iso


class Notification(BaseModel):
    """SPEC §6 payload."""

    model_config = ConfigDict(populate_by_name=True)

    type_report: Literal["catalog"] = Field("catalog", alias="typeReport")
    status: Literal["done", "failed"]
    job_id: str = Field(alias="jobId")
    user_id: int = Field(alias="userId")
    institution_id: int = Field(alias="institutionId")
    subdomain: str
    url: str | None = None
    expires_at: datetime | None = Field(None, alias="expiresAt")
    file_name: str = Field(alias="fileName")
    rows: int | None = None
    error: str | None = None

    @field_serializer("expires_at")
    def _ts(self, v: datetime | None) -> str | None:
        return iso(v)

    def body(self) -> dict:
        return self.model_dump(by_alias=True, mode="json")


class NotificationRejected(Exception):
    """The API answered 4xx: retrying would not help."""


class Notifier(Protocol):
    def send(self, note: Notification) -> None: ...


class OutboxNotifier:
    """One JSON line per notification in ``notifications.jsonl`` (flock'd, fsync'd)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, note: Notification) -> None:
        line = json.dumps(note.body(), ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class _Retryable(Exception):
    pass


class HttpNotifier:
    """POST with timeouts; 5xx, timeouts and connection errors retried with jittered backoff."""

    def __init__(self, url: str, token: str = "", timeout: float = 10.0, attempts: int = 8,
                 max_wait: float = 60.0):
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._retry = stamina.retry_context(
            on=(httpx.TransportError, _Retryable), attempts=attempts, wait_max=max_wait
        )

    def send(self, note: Notification) -> None:
        for attempt in self._retry:
            with attempt:
                resp = self._client.post(self.url, json=note.body(), headers={"Idempotency-Key": note.job_id})
                if resp.status_code >= 500:
                    raise _Retryable(f"notification API answered {resp.status_code}")
                if resp.status_code >= 400:
                    raise NotificationRejected(f"notification API answered {resp.status_code}: {resp.text[:200]}")


def open_notifier(settings) -> Notifier:
    if settings.notify_url:
        return HttpNotifier(settings.notify_url, settings.notify_token, settings.notify_timeout_seconds,
                            settings.notify_attempts)
    return OutboxNotifier(settings.outbox_path)
