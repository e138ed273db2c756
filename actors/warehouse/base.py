"""What every warehouse backend shares: the query parameters, the SQL, the Arrow schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from importlib.resources import files
from typing import Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa

COURSES_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("title", pa.string()),
        ("status", pa.string()),
        ("published_at", pa.timestamp("us")),
        ("views", pa.int64()),
        ("enrollments", pa.int64()),
        ("completions", pa.int64()),
    ]
)
SCHOOLS_SCHEMA = pa.schema([("course_id", pa.int64()), ("school_name", pa.string())])

_SCHOOL_FILTER = (
    "AND c.id IN (SELECT fcs.course_id FROM course_schools fcs "
    "JOIN schools fs ON fs.id = fcs.school_id "
    "WHERE fs.institution_id = ? AND fcs.school_id IN ({marks}))"
)


@dataclass(frozen=True)
class CatalogQuery:
    """One report's filter; the period is already turned into UTC instants."""

    institution_id: int
    period_start: datetime  # naive UTC, inclusive
    period_end: datetime  # naive UTC, exclusive
    school_ids: tuple[int, ...] | None = None

    @classmethod
    def for_dates(
        cls, institution_id: int, start: date, end: date, zone: ZoneInfo, school_ids=None
    ) -> "CatalogQuery":
        """``[start 00:00, end+1 00:00)`` in ``zone``, as the naive UTC the warehouse stores."""

        def utc(d: date) -> datetime:
            local = datetime.combine(d, time(0), tzinfo=zone)
            return local.astimezone(timezone.utc).replace(tzinfo=None)

        ids = tuple(sorted(set(school_ids))) if school_ids else None
        return cls(institution_id, utc(start), utc(end + timedelta(days=1)), ids)

    def _filter(self) -> tuple[str, list]:
        if not self.school_ids:
            return "", []
        marks = ", ".join("?" * len(self.school_ids))
        return _SCHOOL_FILTER.format(marks=marks), [self.institution_id, *self.school_ids]

    def courses_sql(self) -> tuple[str, list]:
        flt, fparams = self._filter()
        sql = _sql("catalog.sql").format(school_filter=flt)
        span = [self.period_start, self.period_end]
        return sql, [self.institution_id, *fparams, *span, *span, *span]

    def schools_sql(self) -> tuple[str, list]:
        flt, fparams = self._filter()
        sql = _sql("course_schools.sql").format(school_filter=flt)
        return sql, [self.institution_id, self.institution_id, *fparams]


@dataclass(frozen=True)
class CatalogRows:
    """The two raw results of the report query, before Arrow post-processing."""

    courses: pa.Table  # COURSES_SCHEMA
    schools: pa.Table  # SCHOOLS_SCHEMA


class Warehouse(Protocol):
    def fetch(self, query: CatalogQuery) -> CatalogRows: ...

    def close(self) -> None: ...


def _sql(name: str) -> str:
    return files("actors.warehouse").joinpath(name).read_text()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a backend's result to the shared schema so every backend returns equal tables."""
    table = table.rename_columns(schema.names)
    return table.cast(schema)
