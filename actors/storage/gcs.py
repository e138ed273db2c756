"""``gs://bucket/prefix`` storage: Google Cloud Storage through the official client.

Objects live under the URL's prefix: ``gs://bucket/reports`` stores ``reports/catalog/…`` and
``reports/jobs/{id}.json``. Report files are uploaded with the client's retry on transient errors:
in one request up to 8 MiB (the client's threshold; cheap to resend whole) and with the resumable
protocol above it, chunk by chunk, so a failed request resends one chunk, not the file. The ledger
is written with generation preconditions, which is how GCS does compare-and-swap.

Credentials are Application Default Credentials. Links are V4 signed URLs, signed locally when
the credentials hold a key (a service-account JSON key in ``GOOGLE_APPLICATION_CREDENTIALS``),
otherwise by Google through IAM ``signBlob`` as the credentials' own service account (the
metadata server on GCE, GKE, Cloud Run), which needs ``roles/iam.serviceAccountTokenCreator``
on itself. V4 links last at most 7 days, so a longer ``REPORTS_LINK_TTL_SECONDS`` is refused at
start-up unless links are public.

URL options, in the query string (``gs://bucket/prefix?public=true&chunk_mib=16``):

- ``public=true|false`` (default false): links are the plain object URL, not signed. The bucket
  must already grant public read (IAM ``allUsers: roles/storage.objectViewer``, best with a
  condition limiting it to ``{prefix}/catalog/`` so the ledger stays private); nothing here
  changes access. Such a link never expires (its expiry is None, ``expiresAt: null``): it works
  for anyone who has it for as long as the object exists and the bucket grants read.
- ``chunk_mib=N`` (default 8): resumable upload chunk size in MiB. Each chunk is held in memory
  and is what one failed request resends.
- ``ledger_timeout=S`` (default 10): seconds one ledger read, write, listing or delete may take,
  retries included, before it fails. The client's own default is two minutes of retries; with
  that, a GCS outage held each report request (whose record is written first) and each heartbeat
  for minutes. Bounded, a request answers 503 with Retry-After and a heartbeat tries again.

With ``STORAGE_EMULATOR_HOST`` set (tests, local emulators) the client talks to that host without
credentials and links point at it; a key in ``GOOGLE_APPLICATION_CREDENTIALS`` still signs them.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import google.auth
from google.api_core import exceptions
from google.auth.credentials import Credentials, Signing
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.auth.transport.requests import Request
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from actors.storage.base import LinkOptions, LinkUnavailable, PreconditionFailed

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # storage, and IAM signBlob
MAX_SIGNED_TTL = 7 * 24 * 3600  # the V4 limit
OPTIONS = {"public", "chunk_mib", "ledger_timeout"}


@dataclass(frozen=True)
class GcsOptions:
    """What a ``gs://`` URL says, checked without opening anything."""

    bucket: str
    prefix: str
    public: bool
    chunk_size: int
    ledger_timeout: float

    @classmethod
    def from_url(cls, url: str, link_ttl_seconds: int) -> GcsOptions:
        """Raises ValueError naming what is wrong (the caller adds the variable's name)."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        if not parts.netloc:
            raise ValueError("gs:// needs a bucket name (gs://bucket/prefix)")
        if unknown := sorted(options.keys() - OPTIONS):
            raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
        public = options.get("public", "false").lower()
        chunk_mib = options.get("chunk_mib", "8")
        if public not in ("true", "false"):
            raise ValueError(f"public must be true or false, not {public!r}")
        if not chunk_mib.isdigit() or int(chunk_mib) < 1:
            raise ValueError("chunk_mib must be a whole number of MiB, at least 1")
        try:
            ledger_timeout = float(options.get("ledger_timeout", "10"))
        except ValueError:
            ledger_timeout = 0.0
        if not 0 < ledger_timeout <= 600:
            raise ValueError("ledger_timeout must be a number of seconds above 0, at most 600")
        if public == "false" and link_ttl_seconds > MAX_SIGNED_TTL:
            raise ValueError(
                f"signed GCS links last at most {MAX_SIGNED_TTL} seconds: lower "
                "REPORTS_LINK_TTL_SECONDS or make links public (?public=true)"
            )
        # chunk_size: a multiple of 256 KiB, as GCS requires
        return cls(parts.netloc, parts.path.strip("/"), public == "true", int(chunk_mib) * 1024 * 1024, ledger_timeout)


class GcsStorage:
    serves_downloads = False

    def __init__(self, url: str, links: LinkOptions) -> None:
        options = GcsOptions.from_url(url, links.ttl_seconds)
        self.public, self.chunk_size, self.prefix = options.public, options.chunk_size, options.prefix
        # Ledger calls: retried for at most ledger_timeout in all, each HTTP request as long at most.
        self._ledger = {"retry": DEFAULT_RETRY.with_timeout(options.ledger_timeout), "timeout": options.ledger_timeout}
        # The emulator takes no credentials: the client then uses anonymous ones by itself.
        emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
        self.client = storage.Client(project=None, credentials=None if emulated else self._credentials)
        self.bucket = self.client.bucket(options.bucket)

    @staticmethod
    def check_url(url: str, links: LinkOptions) -> None:
        GcsOptions.from_url(url, links.ttl_seconds)

    @cached_property
    def _credentials(self) -> Credentials:
        """Loaded once, lazily under the emulator, where only signing needs them."""
        credentials, _ = google.auth.default(scopes=SCOPES)
        return credentials

    def _blob(self, key: str) -> storage.Blob:
        return self.bucket.blob(f"{self.prefix}/{key}" if self.prefix else key)

    def put_file(self, key: str, path: Path, content_type: str, file_name: str) -> None:
        blob = self._blob(key)
        blob.chunk_size = self.chunk_size
        blob.content_disposition = content_disposition(file_name)
        # Unconditional retry is safe: the key is the job's, so a resent upload writes the same file.
        blob.upload_from_filename(str(path), content_type=content_type, retry=DEFAULT_RETRY)

    def link(self, key: str, ttl_seconds: int) -> tuple[str, datetime | None]:
        blob = self._blob(key)
        if self.public:
            return blob.public_url, None  # a plain URL works as long as the object and the bucket's grant do
        try:
            url = blob.generate_signed_url(
                version="v4",
                method="GET",
                expiration=timedelta(seconds=ttl_seconds),
                credentials=self._credentials,
                **self._remote_signer(),
            )
        except DefaultCredentialsError:
            raise LinkUnavailable(
                "gs:// links are signed, and no Google credentials were found: set GOOGLE_APPLICATION_CREDENTIALS "
                "to a service-account key, run as a service account, or make links public (?public=true)"
            ) from None
        except GoogleAuthError as exc:
            raise LinkUnavailable(
                f"gs:// links could not be signed ({exc}); a service account signing through IAM signBlob "
                "needs roles/iam.serviceAccountTokenCreator on itself"
            ) from exc
        # The client stamps the URL with its own clock; the link dies ttl seconds after that.
        signed_at = datetime.strptime(dict(parse_qsl(urlsplit(url).query))["X-Goog-Date"], "%Y%m%dT%H%M%SZ")
        return url, signed_at.replace(tzinfo=UTC) + timedelta(seconds=ttl_seconds)

    def _remote_signer(self) -> dict[str, str]:
        """Nothing when the credentials sign locally; else what IAM signBlob needs to sign for us."""
        credentials = self._credentials
        if isinstance(credentials, Signing):
            return {}
        if not credentials.valid:
            credentials.refresh(Request())  # metadata credentials learn their e-mail here too
        email = getattr(credentials, "service_account_email", None)
        if not email:
            raise LinkUnavailable(
                "gs:// links need a service account to sign them, and the Google credentials "
                "found are not one: use a service-account key (GOOGLE_APPLICATION_CREDENTIALS), "
                "run as a service account, or make links public (?public=true)"
            )
        return {"service_account_email": email, "access_token": credentials.token}

    def check_links(self) -> None:
        self.link("catalog/start-up-check", 60)  # signing needs no object

    def keys_written_since(self, prefix: str, since: datetime) -> Iterator[str]:
        """One listing of ``prefix/`` (names and update times only, paged by the client)."""
        under = f"{self.prefix}/{prefix}/" if self.prefix else f"{prefix}/"
        for blob in self.client.list_blobs(
            self.bucket, prefix=under, delimiter="/", **self._ledger, fields="items(name,updated),nextPageToken"
        ):
            if blob.updated >= since:
                yield f"{prefix}/{blob.name.removeprefix(under)}"

    def read_json(self, key: str) -> tuple[dict, str] | None:
        blob = self._blob(key)
        try:
            raw = blob.download_as_bytes(**self._ledger)
        except exceptions.NotFound:
            return None
        # The download's X-Goog-Generation header: content and generation from the same response.
        return json.loads(raw), str(blob.generation)

    def write_json(self, key: str, value: dict, if_generation: str | None) -> str:
        """``if_generation_match=0`` is GCS for "only if absent". A retried write whose first try
        landed reports PreconditionFailed; the ledger handles that as a lost race and re-reads."""
        blob = self._blob(key)
        blob.cache_control = "no-store"  # publicly readable objects are edge-cached by default
        raw = json.dumps(value, sort_keys=True, default=str).encode()
        try:
            blob.upload_from_string(
                raw,
                content_type="application/json",
                **self._ledger,
                if_generation_match=None if if_generation is None else int(if_generation),
            )
        except exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(key) from exc
        return str(blob.generation)

    def list(self, prefix: str, limit: int, start_after: str | None = None) -> list[tuple[str, datetime]]:
        start = self._blob(prefix).name
        # start_offset is inclusive: ask for one more and drop start_after itself.
        offset = {} if start_after is None else {"start_offset": start + start_after}
        blobs = self.bucket.list_blobs(
            prefix=start, max_results=limit + (start_after is not None), **offset, **self._ledger
        )
        found = [(blob.name.removeprefix(start), blob.updated) for blob in blobs]
        return [(name, at) for name, at in found if name != start_after][:limit]

    def delete(self, key: str, if_generation: str | None = None) -> None:
        try:
            self._blob(key).delete(
                **self._ledger, if_generation_match=None if if_generation is None else int(if_generation)
            )
        except exceptions.NotFound:
            if if_generation is not None:
                raise PreconditionFailed(key) from None
        except exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(key) from exc


def content_disposition(file_name: str) -> str:
    """RFC 6266: a quoted ASCII ``filename`` every client understands and, when the real name is
    not plain ASCII, ``filename*`` (RFC 8187, UTF-8) carrying it for the clients that can."""
    fallback = "".join(
        c if " " <= c <= "~" and c not in '"\\' else "_"  # accents dropped, the rest "_"
        for c in unicodedata.normalize("NFKD", file_name)
        if not unicodedata.combining(c)
    )
    if fallback == file_name:
        return f'attachment; filename="{file_name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
