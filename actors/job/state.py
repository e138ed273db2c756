"""A job's record in the ledger and the transitions between its states, each a named step that
says which states may follow it:

    queued ──claimed──▶ running ──succeeded──▶ done ───notified──▶ (final)
       ▲ │                │ └─────failed──────▶ failed ─notified──▶ (final)
       │ │                │                      │ deleted (the file removed): deleted
       └─┼───retried──────┤
         └──canceled──────┴──▶ canceled (no file, no notification)

A running job whose consumer died is claimed again by another (running → running); a finished
job whose notification has not gone out yet is held (its status unchanged) until it has.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from actors.job.message import CatalogJob, iso, utcnow

JOBS_PREFIX = "jobs"


def ledger_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}/{job_id}.json"


class Status(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    canceled = "canceled"
    deleted = "deleted"


# Which statuses each may change to: the lifecycle above, in one place.
FOLLOWS: dict[Status, frozenset[Status]] = {
    Status.queued: frozenset({Status.running, Status.canceled}),
    Status.running: frozenset({Status.running, Status.queued, Status.done, Status.failed, Status.canceled}),
    Status.done: frozenset({Status.deleted}),
    Status.failed: frozenset({Status.deleted}),
    Status.canceled: frozenset(),
    Status.deleted: frozenset(),
}
FINISHED = frozenset({Status.done, Status.failed})  # produced an outcome to notify
IN_FLIGHT = frozenset({Status.queued, Status.running})
WITHDRAWN = frozenset({Status.canceled, Status.deleted})  # by its requester: no work, no notification


class InvalidTransition(RuntimeError):
    """A step asked of a job in a state it cannot follow: a bug, never a user's error."""


class JobParameters(BaseModel):
    """What the report was asked for (SPEC §2a), as the request gave it or its defaults."""

    model_config = ConfigDict(populate_by_name=True)

    start_date: date = Field(alias="startDate")
    end_date: date = Field(alias="endDate")
    school_ids: list[int] | None = Field(alias="schoolIds")
    format: str
    locale: str
    timezone: str


class JobBody(BaseModel):
    """A job as the API shows it (SPEC §2, §2a): the status and list routes' body and its
    OpenAPI schema."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    type: Literal["catalog"] = "catalog"
    status: Status
    progress: float
    rows: int | None
    url: str | None
    expires_at: str | None = Field(alias="expiresAt")
    error: str | None
    created_at: str = Field(alias="createdAt")
    finished_at: str | None = Field(alias="finishedAt")
    parameters: JobParameters | None  # None only for records older than the message they came from
    size_bytes: int | None = Field(alias="sizeBytes")
    eta_seconds: float | None = Field(alias="etaSeconds")  # while running, from its own progress rate
    downloads: int


class JobState(BaseModel):
    """One job's record in ``jobs/{id}.json``: its status and the idempotency facts.

    ``notified`` is what makes a redelivered message a no-op; ``worker``/``heartbeat`` let a
    second consumer tell a live claim from one whose consumer died; ``job`` is the message, kept
    so the reconciler can publish it again if the queue loses it (None in records older than that).
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
    job: CatalogJob | None = None
    redriven_at: datetime | None = None  # the reconciler last published it again
    redrives: int = 0
    started_at: datetime | None = None  # the current run's claim
    size_bytes: int | None = None
    downloads: int = 0  # files handed out through GET /institution/reports/jobs/{id}/file

    @classmethod
    def accepted(cls, job: CatalogJob) -> JobState:
        """The record of a job nobody has started yet."""
        return cls(
            id=job.job_id, institution_id=job.institution_id, user_id=job.user_id, created_at=job.requested_at, job=job
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def _to(self, status: Status, **changes) -> JobState:
        if status not in FOLLOWS[self.status]:
            raise InvalidTransition(f"job {self.id}: {self.status.value} cannot become {status.value}")
        return self.model_copy(update={"status": status, **changes})

    # The steps. Each returns the next record; the caller writes it compare-and-swap.

    def claimed(self, worker: str) -> JobState:
        """A consumer starts (or, its previous one dead, restarts) the work: one more attempt."""
        now = utcnow()
        return self._to(
            Status.running, worker=worker, heartbeat=now, attempts=self.attempts + 1, error=None, started_at=now
        )

    def held(self, worker: str) -> JobState:
        """A consumer takes a finished job to send its notification: the status stays."""
        if not self.finished or self.notified:
            raise InvalidTransition(f"job {self.id}: only a finished, unnotified job is held to notify")
        return self.model_copy(update={"worker": worker, "heartbeat": utcnow()})

    def progressed(self, fraction: float) -> JobState:
        return self.model_copy(update={"progress": fraction})

    def retried(self) -> JobState:
        """Back to the queue after a transient failure, for any consumer to claim."""
        return self._to(Status.queued, worker=None)

    def succeeded(
        self,
        *,
        rows: int,
        url: str,
        expires_at: datetime | None,
        object_key: str,
        timings: dict[str, float],
        size_bytes: int | None = None,
    ) -> JobState:
        return self._to(
            Status.done,
            progress=1.0,
            rows=rows,
            size_bytes=size_bytes,
            url=url,
            expires_at=expires_at,
            object_key=object_key,
            finished_at=utcnow(),
            timings={k: round(v, 4) for k, v in timings.items()},
        )

    def failed(self, error: str, leftover_key: str | None) -> JobState:
        """Out of attempts; ``leftover_key`` names a file that could not be removed (else None)."""
        return self._to(Status.failed, error=error, finished_at=utcnow(), object_key=leftover_key)

    def released(self) -> JobState:
        """The notification did not go out: any consumer may try it again."""
        return self.model_copy(update={"worker": None})

    def notified_now(self) -> JobState:
        if not self.finished:
            raise InvalidTransition(f"job {self.id}: {self.status.value} is not finished, nothing to notify")
        return self.model_copy(update={"notified": True})

    def downloaded(self) -> JobState:
        """Its file was handed out once more through the service."""
        if self.status is not Status.done:
            raise InvalidTransition(f"job {self.id}: {self.status.value} has no file to download")
        return self.model_copy(update={"downloads": self.downloads + 1})

    def eta_seconds(self, now: datetime) -> float | None:
        """Seconds left at the rate the current run has progressed so far; None before there is
        a rate to go by (the first 5%) or when the job is not running."""
        if self.status is not Status.running or self.started_at is None or self.progress < 0.05:
            return None
        elapsed = (now - self.started_at).total_seconds()
        return round(max(0.0, elapsed * (1 - self.progress) / self.progress), 1)

    def canceled_now(self) -> JobState:
        """Stopped by its requester before it finished: no file, no notification."""
        return self._to(Status.canceled, finished_at=utcnow())

    def deleted_now(self) -> JobState:
        """Its file removed by its requester."""
        return self._to(Status.deleted, url=None, expires_at=None, object_key=None)

    def redriven(self, now: datetime) -> JobState:
        """The reconciler published its message again."""
        return self.model_copy(update={"redriven_at": now, "redrives": self.redrives + 1})

    def public(self) -> JobBody:
        """The shape the status and list routes return (SPEC §2, §2a)."""
        job = self.job
        parameters = None
        if job is not None:
            parameters = JobParameters(
                start_date=job.start_date,
                end_date=job.end_date,
                school_ids=job.school_ids,
                format=job.format,
                locale=job.locale,
                timezone=job.timezone,
            )
        return JobBody(
            id=self.id,
            type=self.type,
            status=self.status,
            progress=round(self.progress, 4),
            rows=self.rows,
            url=self.url,
            expires_at=iso(self.expires_at),
            error=self.error,
            created_at=iso(self.created_at),
            finished_at=iso(self.finished_at),
            parameters=parameters,
            size_bytes=self.size_bytes,
            eta_seconds=self.eta_seconds(utcnow()),
            downloads=self.downloads,
        )
