"""The job message (SPEC §3) and the job state kept in the ledger: the shared vocabulary."""

from __future__ import annotations

from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_serializer, model_validator

TOPIC = "generate-report-catalog-topic"


def utcnow() -> datetime:
    """Now, to the microsecond (phase and lag metrics need it; what the SPEC shows is cut to
    seconds where it is written out: :func:`iso`, ``requestedAt``)."""
    return datetime.now(timezone.utc)


def iso(ts: datetime | None) -> str | None:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class CatalogJob(_Camel):
    """What travels on the queue; the job id is the message id the queue assigns."""

    type: Literal["catalog"] = "catalog"
    version: Literal[1] = 1
    institution_id: PositiveInt = Field(alias="institutionId")
    user_id: PositiveInt = Field(alias="userId")
    subdomain: str = Field(pattern=r"^[a-z0-9-]+$")
    start_date: date = Field(alias="startDate")
    end_date: date = Field(alias="endDate")
    school_ids: list[PositiveInt] | None = Field(default=None, alias="schoolIds", max_length=1000)
    requested_at: datetime = Field(alias="requestedAt")

    @field_serializer("requested_at")
    def _seconds(self, value: datetime) -> str:
        return iso(value)  # SPEC §3: "2026-06-02T12:00:00Z"

    @model_validator(mode="after")
    def _period(self) -> "CatalogJob":
        if self.end_date < self.start_date:
            raise ValueError("endDate is before startDate")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CatalogJob":
        return cls.model_validate_json(data)

    @property
    def file_name(self) -> str:
        return f"catalogo_{self.start_date.isoformat()}_{self.end_date.isoformat()}.xlsx"

    def object_key(self, job_id: str) -> str:
        return f"catalog/{self.institution_id}/{job_id}/{self.file_name}"


class Status(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class JobState(BaseModel):
    """One job's record in ``jobs/{id}.json``: its status and the idempotency facts.

    ``notified`` is what makes a redelivered message a no-op; ``worker``/``heartbeat`` let a
    second consumer tell a live claim from one whose consumer died.
    """

    id: str
    type: Literal["catalog"] = "catalog"
    institution_id: int
    user_id: int
    status: Status = Status.queued
    progress: float = 0.0
    rows: int | None = None
    object_key: str | None = None
    url: str | None = None
    expires_at: datetime | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    notified: bool = False
    attempts: int = 0
    worker: str | None = None
    heartbeat: datetime | None = None
    timings: dict[str, float] = {}  # seconds per phase of the run that produced the file

    def public(self) -> dict:
        """The shape the status endpoint returns (SPEC §2)."""
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status.value,
            "progress": round(self.progress, 4),
            "rows": self.rows,
            "url": self.url,
            "expiresAt": iso(self.expires_at),
            "error": self.error,
            "createdAt": iso(self.created_at),
            "finishedAt": iso(self.finished_at),
        }


JOBS_PREFIX = "jobs"


def ledger_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}/{job_id}.json"
