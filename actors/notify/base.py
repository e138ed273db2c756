"""What every notifier shares: the SPEC §6 payload and the two ways a send can fail."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from actors.job.message import iso


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


class NotifyOptions(BaseModel):
    """How a notifier sends: the API's bearer token, and how long and how often it tries."""

    model_config = ConfigDict(frozen=True)

    token: str = ""
    timeout_seconds: float = 10.0
    attempts: int = 8
    max_wait_seconds: float = 60.0  # the longest pause between two tries
