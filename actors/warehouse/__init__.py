"""Warehouse backends: the report query → Arrow. Pick one with :func:`open_warehouse`."""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from actors.warehouse.base import CatalogQuery, CatalogRows, Warehouse

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "duckdb": "actors.warehouse.duckdb:DuckDBWarehouse",
    "redshift": "actors.warehouse.redshift:RedshiftWarehouse",
}


def open_warehouse(url: str) -> Warehouse:
    module, _, cls = BACKENDS[urlsplit(url).scheme].partition(":")
    return getattr(import_module(module), cls)(url)


__all__ = ["CatalogQuery", "CatalogRows", "Warehouse", "open_warehouse"]
