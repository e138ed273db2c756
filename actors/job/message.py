"""The job message (SPEC §3): what the HTTP side publishes and a consumer reads."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from ulid import ULID

from actors.report.formats import FORMATS
from actors.report.wording import DEFAULT_LOCALE, WORDINGS

JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


def utcnow() -> datetime:
    """Now, to the microsecond (phase and lag metrics need it; what the SPEC shows is cut to
    seconds where it is written out: :func:`iso`, ``requestedAt``)."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def known_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows; ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def new_job_id() -> str:
    """A ULID: unique without asking any queue (whose message ids may restart at 1), and
    ordered by creation time."""
    return str(ULID())


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class _Request(_Camel):
    """What both message versions carry: who asked, and for which period."""

    type: Literal["catalog"] = "catalog"
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
    def _period(self):
        if self.end_date < self.start_date:
            raise ValueError("endDate is before startDate")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class CatalogJobV1(_Request):
    """The first message shape, still accepted: no job id (its message id is the job id) and
    no options (the defaults apply)."""

    version: Literal[1] = 1


_PRODUCED = {"format": FORMATS, "locale": WORDINGS}


class CatalogJob(_Request):
    """The message the service publishes: the job id is its own, recorded in the ledger before
    the message is sent. ``format`` and ``locale`` accept only what the renderer produces."""

    version: Literal[2] = 2
    job_id: str = Field(alias="jobId", pattern=JOB_ID_PATTERN)
    format: str = "xlsx"
    locale: str = DEFAULT_LOCALE
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("format", "locale")
    @classmethod
    def _produced(cls, value: str, info: ValidationInfo) -> str:
        choices = _PRODUCED[info.field_name]  # the writers and the wordings the report has
        if value not in choices:
            raise ValueError(f"{info.field_name} must be one of {', '.join(choices)}")
        return value

    @property
    def file_name(self) -> str:
        prefix = WORDINGS[self.locale].file_prefix
        return f"{prefix}_{self.start_date.isoformat()}_{self.end_date.isoformat()}.{FORMATS[self.format].EXTENSION}"

    @property
    def object_key(self) -> str:
        return f"catalog/{self.institution_id}/{self.job_id}/{self.file_name}"


def read_message(data: bytes, message_id: str, default_timezone: str) -> tuple[CatalogJob, bool]:
    """The job a queue message asks for, and whether it came as version 1 (then its job id is
    the message id and its options the defaults). Raises ValueError when it cannot be read."""
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("a job message is a JSON object")
    if raw.get("version", 1) != 1:
        return CatalogJob.model_validate(raw), False
    first = CatalogJobV1.model_validate(raw)
    return CatalogJob(job_id=message_id, timezone=default_timezone, **first.model_dump(exclude={"version"})), True
