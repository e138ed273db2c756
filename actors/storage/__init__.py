"""Object storage backends: report files, signed links, and the job ledger next to them."""

from __future__ import annotations

from actors.registry import backend_for
from actors.storage.base import LinkOptions, LinkUnavailable, PreconditionFailed, Storage

# scheme → "module:class"; adding a backend is one file and one line here.
BACKENDS = {
    "file": "actors.storage.local:LocalStorage",
    "gs": "actors.storage.gcs:GcsStorage",
}


def open_storage(url: str, links: LinkOptions | None = None) -> Storage:
    return backend_for(url, BACKENDS)(url, links or LinkOptions())


def check_url(url: str, links: LinkOptions) -> None:
    """Raise ValueError saying what is wrong with a storage URL or its options, opening nothing."""
    backend_for(url, BACKENDS).check_url(url, links)


__all__ = ["BACKENDS", "LinkOptions", "LinkUnavailable", "PreconditionFailed", "Storage", "check_url", "open_storage"]
