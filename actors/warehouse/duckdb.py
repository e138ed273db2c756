"""The embedded default: the report query in a DuckDB file, straight into Arrow.

URL: ``duckdb:///abs/path/warehouse.duckdb[?partitions=K&partition_min_rows=N]``. DuckDB
already runs one query on every core, so a report is fetched in one piece unless ``partitions``
says otherwise.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import duckdb
import pyarrow as pa

from actors.warehouse.base import (
    COURSES_SCHEMA,
    LINKS_SCHEMA,
    NAMES_SCHEMA,
    PARTITION_OPTIONS,
    RANGES_SCHEMA,
    CatalogQuery,
    CatalogRows,
    FetchInterrupted,
    IdRange,
    Interrupts,
    Partitioning,
    conform,
    id_ranges,
)


class DuckDBWarehouse:
    """A DuckDB file opened read-only, so the demo generator, an analyst or the other
    partitions' processes can hold it too."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, strict_parsing=True)) if parts.query else {}
        if unknown := options.keys() - PARTITION_OPTIONS:
            raise ValueError(f"unknown duckdb URL options: {sorted(unknown)}")
        self.url, self.path = url, parts.path
        self.partitioning = Partitioning.from_options(options, cap=1)
        if not Path(self.path).is_file():  # DuckDB's own message says "read-only mode", which misleads
            raise FileNotFoundError(f"no DuckDB file at {self.path}")
        self._con = duckdb.connect(self.path, read_only=True)
        self._interrupts = Interrupts()
        self._running: dict[int, duckdb.DuckDBPyConnection] = {}  # thread → the cursor it reads with
        self._lock = threading.Lock()

    def _arrow(self, *statements: tuple[tuple[str, list], pa.Schema]) -> list[pa.Table]:
        """Each (SQL and parameters, schema) in turn; :meth:`interrupt` stops the one running
        and the rest."""
        self._interrupts.start()
        tables = []
        for (sql, params), schema in statements:
            self._interrupts.check()
            cur = self._con.cursor()  # one cursor per call: safe when several threads share us
            with self._lock:
                self._running[threading.get_ident()] = cur
            try:
                tables.append(conform(cur.sql(sql, params=params).to_arrow_table(), schema))
            except duckdb.InterruptException as exc:
                raise FetchInterrupted("the read was interrupted") from exc
            finally:
                with self._lock:
                    del self._running[threading.get_ident()]
                cur.close()
        return tables

    def fetch(self, query: CatalogQuery) -> CatalogRows:
        return CatalogRows(*self._arrow((query.courses_sql(), COURSES_SCHEMA), (query.links_sql(), LINKS_SCHEMA)))

    def school_names(self, query: CatalogQuery) -> pa.Table:
        return self._arrow((query.names_sql(), NAMES_SCHEMA))[0]

    def id_ranges(self, query: CatalogQuery, partitions: int) -> list[IdRange]:
        return id_ranges(self._arrow((query.ranges_sql(partitions), RANGES_SCHEMA))[0])

    def interrupt(self, thread_id: int) -> None:
        self._interrupts.set(thread_id)
        with self._lock:
            cur = self._running.get(thread_id)
            if cur is not None:
                cur.interrupt()

    def close(self) -> None:
        self._con.close()
