"""Query parameters → ReportRequest, with the messages SPEC §2 promises; none given twice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fastapi import Request

from serve_app.errors import ApiError

MAX_SCHOOL_IDS = 1000
MAX_ID = 2**63 - 1
# Reports are about the platform's lifetime; the bounds also keep time-zone arithmetic in range.
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(9998, 12, 31)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
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


def _school_ids(raw: str | None) -> list[int] | None:
    if raw is None:
        return None
    items = raw.split(",")
    if len(items) > MAX_SCHOOL_IDS:
        raise ApiError(400, f"school_ids accepts at most {MAX_SCHOOL_IDS} ids")
    ids = []
    for item in items:
        if not _ID.fullmatch(item) or not 0 < int(item) <= MAX_ID:
            shown = item if len(item) <= 30 else item[:30] + "…"
            raise ApiError(400, f"school_ids must be comma-separated positive integers (got {shown!r})")
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


def parse(start_date: str | None, end_date: str | None, school_ids: str | None) -> ReportRequest:
    start = _date("start_date", start_date)
    end = _date("end_date", end_date)
    if start > end:
        raise ApiError(400, "start_date must be before or equal to end_date")
    return ReportRequest(start, end, _school_ids(school_ids))
