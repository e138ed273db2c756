"""The embedded default: the report query in a DuckDB file, straight into Arrow.

URL: ``duckdb:///abs/path/warehouse.duckdb[?partitions=K&partition_min_rows=N]``. DuckDB
already runs one query on every core, so a report is fetched in one piece unless ``partitions``
says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import duckdb
import pyarrow as pa

from actors.warehouse.base import (
    COURSES_SCHEMA,
    LINKS_SCHEMA,
    NAMES_SCHEMA,
    PARTITION_OPTIONS,
    CatalogQuery,
    CatalogRows,
    IdRange,
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

    def _arrow(self, sql_params: tuple[str, list], schema: pa.Schema) -> pa.Table:
        cur = self._con.cursor()  # one cursor per call: safe when several threads share us
        try:
            return conform(cur.sql(sql_params[0], params=sql_params[1]).to_arrow_table(), schema)
        finally:
            cur.close()

    def fetch(self, query: CatalogQuery) -> CatalogRows:
        return CatalogRows(
            self._arrow(query.courses_sql(), COURSES_SCHEMA), self._arrow(query.links_sql(), LINKS_SCHEMA)
        )

    def school_names(self, query: CatalogQuery) -> pa.Table:
        return self._arrow(query.names_sql(), NAMES_SCHEMA)

    def id_ranges(self, query: CatalogQuery, partitions: int) -> list[IdRange]:
        sql, params = query.ranges_sql(partitions)
        cur = self._con.cursor()
        try:
            return id_ranges(cur.sql(sql, params=params).to_arrow_table())
        finally:
            cur.close()

    def close(self) -> None:
        self._con.close()
