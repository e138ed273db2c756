"""Object storage backends: report files, signed links, and the job ledger next to them."""

from __future__ import annotations

from actors.registry import backend_for
from actors.storage.base import LinkUnavailable, PreconditionFailed, Storage

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "file": "actors.storage.local:LocalStorage",
    "gs": "actors.storage.gcs:GcsStorage",
}


def open_storage(settings) -> Storage:
    return backend_for(settings.storage_url, BACKENDS)(settings)


def check_url(url: str, link_ttl_seconds: int) -> None:
    """Raise ValueError saying what is wrong with a storage URL or its options, opening nothing."""
    backend_for(url, BACKENDS).check_url(url, link_ttl_seconds)


__all__ = ["LinkUnavailable", "PreconditionFailed", "Storage", "check_url", "open_storage"]
