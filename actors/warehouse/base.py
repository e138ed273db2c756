"""What every warehouse backend shares: the query parameters, the SQL, the Arrow schema.

A big report is fetched in partitions: contiguous ranges of course ids with about as many
courses each (:meth:`Warehouse.id_ranges`), each fetched on its own connection. A partition
carries its courses and their school links, so the two always come from one transaction; school
names travel once per report (:meth:`Warehouse.school_names`), not once per link.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
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
LINKS_SCHEMA = pa.schema([("course_id", pa.int64()), ("school_id", pa.int64())])
NAMES_SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
RANGES_SCHEMA = pa.schema([("first_id", pa.int64()), ("last_id", pa.int64()), ("courses", pa.int64())])

_SCHOOL_FILTER = (
    "AND c.id IN (SELECT fcs.course_id FROM course_schools fcs "
    "JOIN schools fs ON fs.id = fcs.school_id "
    "WHERE fs.institution_id = ? AND fcs.school_id IN ({marks}))"
)
_ID_RANGE = "AND c.id BETWEEN ? AND ?"


@dataclass(frozen=True)
class IdRange:
    """One partition: the courses with ``first_id <= id <= last_id`` (``courses`` of them)."""

    first_id: int
    last_id: int
    courses: int


@dataclass(frozen=True)
class CatalogQuery:
    """One report's filter; the period is already turned into UTC instants."""

    institution_id: int
    period_start: datetime  # naive UTC, inclusive
    period_end: datetime  # naive UTC, exclusive
    school_ids: tuple[int, ...] | None = None
    ids: IdRange | None = None  # one partition's courses; None: all of them
    zone: str = "UTC"  # the report's time zone: its period above, and the dates it shows

    @classmethod
    def for_dates(cls, institution_id: int, start: date, end: date, zone: ZoneInfo, school_ids=None) -> CatalogQuery:
        """``[start 00:00, end+1 00:00)`` in ``zone``, as the naive UTC the warehouse stores."""

        def utc(d: date) -> datetime:
            local = datetime.combine(d, time(0), tzinfo=zone)
            return local.astimezone(UTC).replace(tzinfo=None)

        ids = tuple(sorted(set(school_ids))) if school_ids else None
        return cls(institution_id, utc(start), utc(end + timedelta(days=1)), ids, zone=zone.key)

    def part(self, ids: IdRange) -> CatalogQuery:
        return replace(self, ids=ids)

    def _filter(self, with_ids: bool = True) -> tuple[str, list]:
        sql, params = "", []
        if self.school_ids:
            sql = _SCHOOL_FILTER.format(marks=", ".join("?" * len(self.school_ids)))
            params = [self.institution_id, *self.school_ids]
        if with_ids and self.ids is not None:
            sql, params = f"{sql} {_ID_RANGE}", [*params, self.ids.first_id, self.ids.last_id]
        return sql, params

    def courses_sql(self) -> tuple[str, list]:
        flt, fparams = self._filter()
        ids = [self.ids.first_id, self.ids.last_id] if self.ids is not None else []
        sql = _sql("catalog.sql").format(
            school_filter=flt,
            views_range="AND v.course_id BETWEEN ? AND ?" if ids else "",
            enrolled_range="AND e.course_id BETWEEN ? AND ?" if ids else "",
        )
        span = [self.period_start, self.period_end]
        return sql, [self.institution_id, *fparams, *span, *ids, *span, *span, *ids]

    def links_sql(self) -> tuple[str, list]:
        flt, fparams = self._filter()
        sql = _sql("course_schools.sql").format(school_filter=flt)
        return sql, [self.institution_id, self.institution_id, *fparams]

    def names_sql(self) -> tuple[str, list]:
        return "SELECT id, name FROM schools WHERE institution_id = ?", [self.institution_id]

    def ranges_sql(self, partitions: int) -> tuple[str, list]:
        if not isinstance(partitions, int) or partitions < 1:  # written into the SQL text
            raise ValueError(f"partitions must be a positive integer, not {partitions!r}")
        flt, fparams = self._filter(with_ids=False)
        sql = _sql("partitions.sql").format(school_filter=flt, partitions=partitions)
        return sql, [self.institution_id, *fparams]


@dataclass(frozen=True)
class CatalogRows:
    """The two raw results of the report query (or of one partition), before Arrow post-processing."""

    courses: pa.Table  # COURSES_SCHEMA
    links: pa.Table  # LINKS_SCHEMA: (course, school) pairs, schools of the same institution


@dataclass(frozen=True)
class Partitioning:
    """How a backend's reports are fetched: the URL's ``partitions=K`` (None: by cluster size)
    and ``partition_min_rows`` (smaller reports are fetched in one piece)."""

    partitions: int | None = None
    # bench/redshift_bench.py --partition-min-rows 0, K=1 vs K=2 (2026-11-30, packed rows): 20,000
    # courses 0.58 vs 0.72 s, 50,000 0.97 vs 0.98 s, 100,000 1.46 vs 1.38 s. On PostgreSQL much of a
    # small report's query is JIT compiling the packed statement (EXPLAIN ANALYZE at 5,000 courses:
    # 343 of 400 ms), paid by every partition.
    min_rows: int = 50_000
    cap: int = 1  # the default's ceiling: 1 where the engine already uses every core for one query

    def default_partitions(self, cpus: int) -> int:
        return max(1, min(self.cap, cpus))

    @classmethod
    def from_options(cls, options: dict[str, str], cap: int) -> Partitioning:
        k = int(options["partitions"]) if "partitions" in options else None
        if k is not None and not 1 <= k <= 64:
            raise ValueError(f"partitions must be between 1 and 64, not {k}")
        min_rows = int(options.get("partition_min_rows", cls.min_rows))
        if min_rows < 0:
            raise ValueError(f"partition_min_rows must be at least 0, not {min_rows}")
        return cls(k, min_rows, cap)


PARTITION_OPTIONS = {"partitions", "partition_min_rows"}


class Warehouse(Protocol):
    url: str
    partitioning: Partitioning

    def fetch(self, query: CatalogQuery) -> CatalogRows: ...

    def school_names(self, query: CatalogQuery) -> pa.Table:
        """NAMES_SCHEMA: the institution's schools (a report's links name them by id)."""

    def id_ranges(self, query: CatalogQuery, partitions: int) -> list[IdRange]:
        """The report's courses cut into at most ``partitions`` id ranges of nearly equal size."""

    def interrupt(self, thread_id: int) -> None:
        """Stop what thread ``thread_id`` is reading from the warehouse, on the server too: its
        call raises :class:`FetchInterrupted` (a canceled job's query). Any thread may call it."""

    def close(self) -> None: ...


class FetchInterrupted(Exception):
    """A read stopped by :meth:`Warehouse.interrupt`."""


class Interrupts:
    """Which threads were told to stop reading: set by ``interrupt``, checked by the reading
    thread between statements and blocks (a statement the server is running is stopped by
    the backend's own means), cleared when a read starts."""

    def __init__(self) -> None:
        self._threads: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._threads.discard(threading.get_ident())

    def set(self, thread_id: int) -> None:
        with self._lock:
            self._threads.add(thread_id)

    def interrupted(self) -> bool:
        with self._lock:
            return threading.get_ident() in self._threads

    def check(self) -> None:
        """Raise :class:`FetchInterrupted` if this thread was told to stop."""
        if self.interrupted():
            raise FetchInterrupted("the read was interrupted")


def id_ranges(table: pa.Table) -> list[IdRange]:
    """RANGES_SCHEMA rows → ranges; no courses → none."""
    return [IdRange(**row) for row in conform(table, RANGES_SCHEMA).to_pylist()]


def _sql(name: str) -> str:
    return files("actors.warehouse").joinpath(name).read_text()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a backend's result to the shared schema so every backend returns equal tables."""
    table = table.rename_columns(schema.names)
    return table.cast(schema)
