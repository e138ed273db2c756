"""Object storage backends: report files, signed links, and the job ledger next to them."""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from actors.storage.base import PreconditionFailed, Storage

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "file": "actors.storage.local:LocalStorage",
    "gs": "actors.storage.gcs:GcsStorage",
}


def open_storage(settings) -> Storage:
    module, _, cls = BACKENDS[urlsplit(settings.storage_url).scheme].partition(":")
    return getattr(import_module(module), cls)(settings)


__all__ = ["PreconditionFailed", "Storage", "open_storage"]
