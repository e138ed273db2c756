"""Warehouse backends: the report query → Arrow. Pick one with :func:`open_warehouse`."""

from __future__ import annotations

from actors.registry import backend_for
from actors.warehouse.base import CatalogQuery, CatalogRows, Warehouse

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "duckdb": "actors.warehouse.duckdb:DuckDBWarehouse",
    "redshift": "actors.warehouse.redshift:RedshiftWarehouse",
}


def open_warehouse(url: str) -> Warehouse:
    return backend_for(url, BACKENDS)(url)


__all__ = ["CatalogQuery", "CatalogRows", "Warehouse", "open_warehouse"]
