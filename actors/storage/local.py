"""``file://`` storage: a directory on this machine, with links served by the Serve app.

Writes go to a temp file renamed into place (atomic); the ledger's compare-and-swap holds an
``flock`` across read-compare-rename. Good for one machine; a cluster uses ``gs://``.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from itsdangerous import BadSignature, Signer

from actors.storage.base import LinkOptions, PreconditionFailed

DOWNLOAD_PATH = "/institution/reports/files/"


LOCK_STRIPES = 64  # lock files per directory of records; a record's is picked by its name


class LinkSigner:
    """HMAC-signed, expiring download links (itsdangerous over key and expiry)."""

    def __init__(self, secret: str):
        self._signer = Signer(secret, salt="catalog-report.download", digest_method=hashlib.sha256)

    def sign(self, key: str, expires: int) -> str:
        return self._signer.get_signature(f"{key}\n{expires}").decode()

    def valid(self, key: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        try:
            return self._signer.verify_signature(f"{key}\n{expires}", signature.encode())
        except (BadSignature, UnicodeEncodeError):
            return False


class LocalStorage:
    serves_downloads = True

    def __init__(self, url: str, links: LinkOptions):
        self.root = Path(urlsplit(url).path)
        self.root.mkdir(parents=True, exist_ok=True)
        self.base_url = links.public_base_url
        self.signer = LinkSigner(links.secret)

    @staticmethod
    def check_url(url: str, links: LinkOptions) -> None:
        parts = urlsplit(url)
        if parts.netloc or not parts.path.startswith("/") or parts.query:
            raise ValueError(f"expected file:///absolute/directory (no host, no options), got {url!r}")

    def path(self, key: str) -> Path:
        """The file behind ``key``; refuses anything that would leave the root."""
        p = (self.root / key).resolve()
        if not p.is_relative_to(self.root.resolve()) or p == self.root.resolve():
            raise KeyError(key)
        return p

    def put_file(self, key: str, path: Path, content_type: str, file_name: str) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-")
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)

    def link(self, key: str, ttl_seconds: int) -> tuple[str, datetime]:
        expires = int(time.time()) + ttl_seconds
        sig = self.signer.sign(key, expires)
        url = f"{self.base_url}{DOWNLOAD_PATH}{quote(key)}?expires={expires}&signature={sig}"
        return url, datetime.fromtimestamp(expires, UTC)

    def check_links(self) -> None:
        """Links are signed with the link secret, which settings already require."""

    def keys_written_since(self, prefix: str, since: datetime) -> Iterator[str]:
        cutoff = since.timestamp()
        try:
            entries = os.scandir(self.path(prefix))
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:  # temporary and lock files start with a dot
                if not entry.name.startswith(".") and entry.is_file() and entry.stat().st_mtime >= cutoff:
                    yield f"{prefix}/{entry.name}"

    def read_json(self, key: str) -> tuple[dict, str] | None:
        try:
            raw = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        return json.loads(raw), _generation(raw)

    def write_json(self, key: str, value: dict, if_generation: str | None) -> str:
        """Compare-and-swap one record. The new content is written and fsynced before the lock
        is taken, so the lock covers only the check and the rename; and each record has its
        own lock (one of :data:`LOCK_STRIPES`), so a job's writes never wait on another's."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        raw = json.dumps(value, sort_keys=True, default=str).encode()
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".ledger-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            with self._locked(dest.parent, dest.name):
                if if_generation is not None:
                    try:
                        current = _generation(dest.read_bytes())
                    except FileNotFoundError:
                        current = "0"
                    if current != if_generation:
                        raise PreconditionFailed(key)
                os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return _generation(raw)

    def delete(self, key: str, if_generation: str | None = None) -> None:
        dest = self.path(key)
        if not dest.parent.is_dir():
            if if_generation is not None:
                raise PreconditionFailed(key)
            return
        with self._locked(dest.parent, dest.name):
            try:
                if if_generation is not None and _generation(dest.read_bytes()) != if_generation:
                    raise PreconditionFailed(key)
                dest.unlink()
            except FileNotFoundError:
                if if_generation is not None:
                    raise PreconditionFailed(key) from None

    def list(self, prefix: str, limit: int, start_after: str | None = None) -> list[tuple[str, datetime]]:
        directory = self.path(prefix.rstrip("/"))
        try:
            names = sorted(n for n in os.listdir(directory) if not n.startswith("."))  # not locks, temp files
        except FileNotFoundError:
            return []
        if start_after is not None:
            names = names[bisect.bisect_right(names, start_after) :]
        found = []
        for name in names[:limit]:
            try:
                mtime = (directory / name).stat().st_mtime
            except FileNotFoundError:  # removed meanwhile
                continue
            found.append((name, datetime.fromtimestamp(mtime, UTC)))
        return found

    @contextmanager
    def _locked(self, directory: Path, name: str):
        stripe = zlib.crc32(name.encode()) % LOCK_STRIPES
        with open(directory / f".lock-{stripe:02d}", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _generation(raw: bytes) -> str:
    # Content-addressed: equal content is the same generation, which is harmless for CAS.
    return hashlib.sha256(raw).hexdigest()[:32]
