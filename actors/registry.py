"""Backends by URL scheme: each kind keeps a ``scheme → "module:Class"`` table, and a backend's
module is imported only when a URL asks for it (no cloud client loads for embedded defaults)."""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit


def backend_for(url: str, table: dict[str, str]) -> type:
    module, _, name = table[urlsplit(url).scheme].partition(":")
    return getattr(import_module(module), name)
