"""The embedded default: the report query in a DuckDB file, straight into Arrow."""

from __future__ import annotations

from urllib.parse import urlsplit

import duckdb

from actors.warehouse.base import COURSES_SCHEMA, SCHOOLS_SCHEMA, CatalogQuery, CatalogRows, conform


class DuckDBWarehouse:
    """``duckdb:///abs/path/warehouse.duckdb``, opened read-only so the demo generator or an
    analyst can hold the file too."""

    def __init__(self, url: str):
        self.path = urlsplit(url).path
        self._con = duckdb.connect(self.path, read_only=True)

    def fetch(self, query: CatalogQuery) -> CatalogRows:
        cur = self._con.cursor()  # one cursor per call: safe when several threads share us
        try:
            sql, params = query.courses_sql()
            courses = cur.sql(sql, params=params).to_arrow_table()
            sql, params = query.schools_sql()
            schools = cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.close()
        return CatalogRows(conform(courses, COURSES_SCHEMA), conform(schools, SCHOOLS_SCHEMA))

    def close(self) -> None:
        self._con.close()
