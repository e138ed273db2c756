"""The storage interface. Generations make ledger writes compare-and-swap, so two consumers
racing on one job cannot both claim or both notify."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PreconditionFailed(Exception):
    """The object changed (or exists / does not exist) since it was read."""


class LinkUnavailable(Exception):
    """Download links cannot be made as configured; the message says what is missing."""


class LinkOptions(BaseModel):
    """What download links need: how long they last, and for storage that serves its own files
    (``file://``), the secret that signs them and the service's public address."""

    model_config = ConfigDict(frozen=True)

    ttl_seconds: int = 604800
    secret: str = ""
    public_base_url: str = "http://127.0.0.1:8000"


class Storage(Protocol):
    # True when the service itself serves this storage's files behind its signed links (the
    # download route); False when links point at the storage (a signed or public GCS URL).
    serves_downloads: ClassVar[bool]

    def put_file(self, key: str, path: Path, content_type: str, file_name: str) -> None: ...

    def link(self, key: str, ttl_seconds: int) -> tuple[str, datetime | None]:
        """A URL the requester can download ``key`` from, and when it stops working (None: it
        does not expire); the object need not exist yet. Raises LinkUnavailable."""
        ...

    def check_links(self) -> None:
        """Raise LinkUnavailable unless links can be made: a start-up check, so a missing key is
        found before any job is run."""
        ...

    def keys_written_since(self, prefix: str, since: datetime) -> Iterator[str]:
        """Keys directly under ``prefix/`` whose last write was at or after ``since``."""
        ...

    def read_json(self, key: str) -> tuple[dict, str] | None:
        """The object and its generation, or None when absent."""
        ...

    def write_json(self, key: str, value: dict, if_generation: str | None) -> str:
        """Write atomically; ``if_generation`` "0" = only if absent, a generation = only if
        unchanged, None = unconditionally. Returns the new generation."""
        ...

    def delete(self, key: str, if_generation: str | None = None) -> None:
        """Remove ``key`` if it is still at ``if_generation`` (PreconditionFailed otherwise, also
        when it is gone); with None, whatever is there, and nothing if it is absent."""
        ...

    def list(self, prefix: str, limit: int, start_after: str | None = None) -> list[tuple[str, datetime]]:
        """Up to ``limit`` keys under ``prefix`` (the part after it), in name order, each with
        when it was last written; only names after ``start_after`` when given. Its cost follows
        what is under ``prefix``, never the rest of the storage."""
        ...
