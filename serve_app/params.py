"""Query parameters → ReportRequest, with the messages SPEC §2 promises; none given twice."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, Strict

from actors.job.message import known_zone
from actors.job.state import Status
from actors.report.formats import FORMATS as REPORT_FORMATS
from actors.report.wording import WORDINGS
from serve_app.errors import ApiError

MAX_SCHOOL_IDS = 1000
MAX_ID = 2**63 - 1
# Reports are about the platform's lifetime; the bounds also keep time-zone arithmetic in range.
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(9998, 12, 31)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only (\d would take "२०२५")
_ID = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class ReportRequest:
    start_date: date
    end_date: date
    school_ids: list[int] | None


def _date(name: str, raw: str | None) -> date:
    if raw is None or raw == "":
        raise ApiError(400, f"{name} is required")
    if not _DATE.fullmatch(raw):
        raise ApiError(400, f"{name} must be an ISO date (YYYY-MM-DD)")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} is not a valid date") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise ApiError(400, f"{name} must be between {MIN_DATE} and {MAX_DATE}")
    return value


def _school_ids(raw: str | None, name: str = "school_ids") -> list[int] | None:
    if raw is None:
        return None
    items = raw.split(",")
    if len(items) > MAX_SCHOOL_IDS:
        raise ApiError(400, f"{name} accepts at most {MAX_SCHOOL_IDS} ids")
    ids = []
    for item in items:
        if not _ID.fullmatch(item) or not 0 < int(item) <= MAX_ID:
            shown = item if len(item) <= 30 else item[:30] + "…"
            raise ApiError(400, f"{name} must be comma-separated positive integers (got {shown!r})")
        ids.append(int(item))
    return sorted(set(ids))


def single_valued(request: Request) -> None:
    """Every route's dependency: a parameter given twice would silently keep one of its values
    (``school_ids=1&school_ids=999`` ran the report for school 999 alone), so it is refused."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            shown = name if len(name) <= 30 else name[:30] + "…"
            raise ApiError(400, f"query parameter {shown!r} is repeated; give it once")
        seen.add(name)


def parse(
    start_date: str | None,
    end_date: str | None,
    school_ids: str | None,
    names: tuple[str, str, str] = ("start_date", "end_date", "school_ids"),
) -> ReportRequest:
    """The request's period and schools; ``names``: how the caller spelled the three (the
    GET's query parameters, or the POST body's fields)."""
    start = _date(names[0], start_date)
    end = _date(names[1], end_date)
    if start > end:
        raise ApiError(400, f"{names[0]} must be before or equal to {names[1]}")
    return ReportRequest(start, end, _school_ids(school_ids, names[2]))


LIST_DEFAULT, LIST_MAX = 20, 100
_LIMIT = re.compile(r"[0-9]{1,3}")
_HISTORY_ENTRY = re.compile(r"[0-9]{13}-[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class Listing:
    status: Status | None
    limit: int
    after: str | None  # the history entry the previous page ended with


def cursor_for(entry: str) -> str:
    """An opaque cursor: callers pass it back, they need not read it."""
    return base64.urlsafe_b64encode(entry.encode()).decode().rstrip("=")


def parse_listing(status: str | None, limit: str | None, cursor: str | None) -> Listing:
    if status is not None and status not in Status.__members__:
        raise ApiError(400, f"status must be one of {', '.join(Status.__members__)}")
    if limit is None:
        count = LIST_DEFAULT
    elif not _LIMIT.fullmatch(limit) or not 1 <= int(limit) <= LIST_MAX:
        raise ApiError(400, f"limit must be a whole number from 1 to {LIST_MAX}")
    else:
        count = int(limit)
    after = None
    if cursor is not None:
        try:
            after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            after = ""
        if not _HISTORY_ENTRY.fullmatch(after):
            raise ApiError(400, "cursor is not one this service gave out")
    return Listing(Status(status) if status else None, count, after)


FORMATS, LOCALES = tuple(REPORT_FORMATS), tuple(WORDINGS)  # the first of each is the default
_PRINTABLE = re.compile(r"[\x20-\x7e]{1,255}")


@dataclass(frozen=True)
class Options:
    format: str
    locale: str
    timezone: str


def parse_options(format: str | None, locale: str | None, timezone: str | None, default_timezone: str) -> Options:
    if format is not None and format not in FORMATS:
        raise ApiError(400, f"format {_shown(format)} is not available; it must be one of {', '.join(FORMATS)}")
    if locale is not None and locale not in LOCALES:
        raise ApiError(400, f"locale {_shown(locale)} is not available; it must be one of {', '.join(LOCALES)}")
    if timezone is not None:
        try:
            known_zone(timezone)
        except ValueError:
            raise ApiError(400, f"timezone {_shown(timezone)} is not an IANA time zone name") from None
    return Options(format or FORMATS[0], locale or LOCALES[0], timezone or default_timezone)


def idempotency_key(raw: str | None) -> str | None:
    if raw is not None and not _PRINTABLE.fullmatch(raw):
        raise ApiError(400, "Idempotency-Key must be 1 to 255 printable ASCII characters")
    return raw


def _shown(value: str) -> str:
    return repr(value if len(value) <= 30 else value[:30] + "…")


class CatalogRequestBody(BaseModel):
    """POST /institution/reports/catalog (SPEC §2a); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    startDate: str = Field(description="First day, YYYY-MM-DD.", examples=["2026-01-01"])
    endDate: str = Field(description="Last day (included), YYYY-MM-DD.", examples=["2026-06-30"])
    schoolIds: list[Annotated[int, Strict()]] | None = Field(None, examples=[[10, 20]])
    format: str | None = Field(None, description="xlsx (default), csv or parquet.", examples=["xlsx"])
    locale: str | None = Field(None, examples=["pt-BR"])
    timezone: str | None = Field(None, examples=["America/Sao_Paulo"])

    def request(self) -> ReportRequest:
        """The same checks and messages as the GET's query parameters."""
        ids = None if self.schoolIds is None else ",".join(map(str, self.schoolIds))
        return parse(self.startDate, self.endDate, ids, names=("startDate", "endDate", "schoolIds"))
