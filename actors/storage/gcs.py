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
  changes access. The returned expiry is then the promised one, ``now + ttl``.
- ``chunk_mib=N`` (default 8): resumable upload chunk size in MiB. Each chunk is held in memory
  and is what one failed request resends.

With ``STORAGE_EMULATOR_HOST`` set (tests, local emulators) the client talks to that host without
credentials and links point at it; a key in ``GOOGLE_APPLICATION_CREDENTIALS`` still signs them.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import google.auth
from google.api_core import exceptions
from google.auth.credentials import Credentials, Signing
from google.auth.transport.requests import Request
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from actors.settings import ConfigError
from actors.storage.base import PreconditionFailed

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # storage, and IAM signBlob
MAX_SIGNED_TTL = 7 * 24 * 3600  # the V4 limit
OPTIONS = {"public", "chunk_mib"}


class GcsStorage:
    def __init__(self, settings) -> None:
        url = urlsplit(settings.storage_url)
        options = dict(parse_qsl(url.query, keep_blank_values=True))
        if not url.netloc:
            raise ConfigError("REPORTS_STORAGE_URL: gs:// needs a bucket name (gs://bucket/prefix)")
        if unknown := sorted(options.keys() - OPTIONS):
            raise ConfigError(f"REPORTS_STORAGE_URL: unknown option {unknown[0]!r} (known: public, chunk_mib)")
        public = options.get("public", "false").lower()
        chunk_mib = options.get("chunk_mib", "8")
        if public not in ("true", "false"):
            raise ConfigError("REPORTS_STORAGE_URL: public must be true or false")
        if not chunk_mib.isdigit() or int(chunk_mib) < 1:
            raise ConfigError("REPORTS_STORAGE_URL: chunk_mib must be a whole number of MiB, at least 1")
        self.public = public == "true"
        if not self.public and settings.link_ttl_seconds > MAX_SIGNED_TTL:
            raise ConfigError(f"REPORTS_LINK_TTL_SECONDS: signed GCS links last at most {MAX_SIGNED_TTL} seconds")
        self.chunk_size = int(chunk_mib) * 1024 * 1024  # a multiple of 256 KiB, as GCS requires
        self.prefix = url.path.strip("/")
        # The emulator takes no credentials: the client then uses anonymous ones by itself.
        emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
        self.client = storage.Client(project=None, credentials=None if emulated else self._credentials)
        self.bucket = self.client.bucket(url.netloc)

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

    def link(self, key: str, ttl_seconds: int) -> tuple[str, datetime]:
        blob = self._blob(key)
        if self.public:
            now = datetime.now(timezone.utc).replace(microsecond=0)
            return blob.public_url, now + timedelta(seconds=ttl_seconds)
        url = blob.generate_signed_url(version="v4", method="GET", expiration=timedelta(seconds=ttl_seconds),
                                       credentials=self._credentials, **self._remote_signer())
        # The client stamps the URL with its own clock; the link dies ttl seconds after that.
        signed_at = datetime.strptime(dict(parse_qsl(urlsplit(url).query))["X-Goog-Date"], "%Y%m%dT%H%M%SZ")
        return url, signed_at.replace(tzinfo=timezone.utc) + timedelta(seconds=ttl_seconds)

    def _remote_signer(self) -> dict[str, str]:
        """Nothing when the credentials sign locally; else what IAM signBlob needs to sign for us."""
        credentials = self._credentials
        if isinstance(credentials, Signing):
            return {}
        if not credentials.valid:
            credentials.refresh(Request())  # metadata credentials learn their e-mail here too
        email = getattr(credentials, "service_account_email", None)
        if not email:
            raise RuntimeError("GCS links need a service account to sign them; these credentials are "
                               "not one (use a service-account key or run as a service account)")
        return {"service_account_email": email, "access_token": credentials.token}

    def keys_written_since(self, prefix: str, since: datetime) -> Iterator[str]:
        """One listing of ``prefix/`` (names and update times only, paged by the client)."""
        under = f"{self.prefix}/{prefix}/" if self.prefix else f"{prefix}/"
        for blob in self.client.list_blobs(self.bucket, prefix=under, delimiter="/", retry=DEFAULT_RETRY,
                                           fields="items(name,updated),nextPageToken"):
            if blob.updated >= since:
                yield f"{prefix}/{blob.name.removeprefix(under)}"

    def read_json(self, key: str) -> tuple[dict, str] | None:
        blob = self._blob(key)
        try:
            raw = blob.download_as_bytes(retry=DEFAULT_RETRY)
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
            blob.upload_from_string(raw, content_type="application/json", retry=DEFAULT_RETRY,
                                    if_generation_match=None if if_generation is None else int(if_generation))
        except exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(key) from exc
        return str(blob.generation)


def content_disposition(file_name: str) -> str:
    """RFC 6266: a quoted ASCII ``filename`` every client understands and, when the real name is
    not plain ASCII, ``filename*`` (RFC 8187, UTF-8) carrying it for the clients that can."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_"  # accents dropped, the rest "_"
                       for c in unicodedata.normalize("NFKD", file_name) if not unicodedata.combining(c))
    if fallback == file_name:
        return f'attachment; filename="{file_name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
