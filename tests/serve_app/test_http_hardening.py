"""A hostile client against the running service (issue 11): malformed links, tokens and HTTP,
HEAD, repeated parameters. Every answer is Encore JSON with the status SPEC §2 names."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.conftest import SECRET
from tests.serve_app.test_http_api import GOOD, assert_error
from tests.support.jobs import catalog_job

UNKNOWN_JOB = "/institution/reports/jobs/no-such-job"  # 404 once the token is accepted


def claims(**changes) -> dict:
    body = {"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": int(time.time()) + 600, **changes}
    return {k: v for k, v in body.items() if v is not None}


def signed_raw(payload: bytes) -> str:
    """A correctly signed token whose payload is exactly ``payload`` (JSON json.dumps would not write)."""
    return jwt.api_jws.encode(payload, SECRET, algorithm="HS256")


# -- defect 2: the download route never answers 500 to a malformed expiry ------------------------


@pytest.mark.parametrize("expires", ["%C2%B2", "9" * 5000, "%D9%A1%D9%A2", "+1", " 1", "1.5", "0x10"])
def test_download_link_with_a_malformed_expiry_is_permission_denied(service, expires):
    r = httpx.get(f"{service.base_url}/institution/reports/files/x?expires={expires}&signature=a", timeout=30)
    assert_error(r, 403, "permission_denied")


# -- defect 4: clock skew -------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_a_token_from_a_clock_a_little_ahead_is_accepted(service, claim):
    token = jwt.encode(claims(**{claim: int(time.time()) + 5}), SECRET, algorithm="HS256")
    assert_error(service.get(UNKNOWN_JOB, token), 404, "not_found")


def test_a_token_just_expired_is_accepted_within_the_leeway(service):
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert_error(service.get(UNKNOWN_JOB, token), 404, "not_found")


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_a_token_from_the_future_says_not_yet_valid(service, claim):
    token = jwt.encode(claims(**{claim: int(time.time()) + 300}), SECRET, algorithm="HS256")
    assert assert_error(service.get(UNKNOWN_JOB, token), 401, "unauthenticated")["message"] == "token not yet valid"


def test_a_token_past_the_leeway_says_expired(service):
    token = jwt.encode(claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256")
    assert assert_error(service.get(UNKNOWN_JOB, token), 401, "unauthenticated")["message"] == "token expired"


# -- defect 5: exp must be a finite integer -------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b'"inf"',
        b'"9999999999"',
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e400",
        b"9999999999.5",
        b"true",
        b"null",
        b"[9999999999]",
    ],
    ids=lambda p: p.decode(),
)
def test_exp_that_is_not_a_finite_integer_is_invalid_argument(service, payload):
    token = signed_raw(b'{"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": ' + payload + b"}")
    assert "exp" in assert_error(service.get(UNKNOWN_JOB, token), 400, "invalid_argument")["message"]


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_iat_and_nbf_when_present_are_integers_too(service, claim):
    token = signed_raw(
        b'{"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": 9999999999, "' + claim.encode() + b'": "soon"}'
    )
    assert claim in assert_error(service.get(UNKNOWN_JOB, token), 400, "invalid_argument")["message"]


def test_exp_is_required(service):
    token = jwt.encode(claims(exp=None), SECRET, algorithm="HS256")
    assert "exp" in assert_error(service.get(UNKNOWN_JOB, token), 400, "invalid_argument")["message"]


# -- defect 9: HEAD and repeated query parameters -------------------------------------------------


def test_head_is_answered_on_health_status_and_downloads(service):
    token = service.token(institution_id=6)
    job_id = service.request_report(token, **GOOD).json()["results"]["id"]
    url = service.wait_done(job_id, token)["url"]
    head = httpx.head(service.base_url + "/healthz", timeout=30)
    assert head.status_code == 200 and head.content == b""
    status = httpx.head(
        f"{service.base_url}/institution/reports/jobs/{job_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert status.status_code == 200 and status.content == b"" and status.headers["cache-control"] == "no-store"
    download, got = httpx.head(url, timeout=30), httpx.get(url, timeout=30)
    assert download.status_code == 200 and download.content == b""
    assert download.headers["content-length"] == str(len(got.content))
    assert download.headers["content-type"] == got.headers["content-type"]
    # HEAD answers what GET would, errors included, and never does what only GET of a report does.
    assert httpx.head(f"{service.base_url}/institution/reports/jobs/{job_id}", timeout=30).status_code == 401
    catalog = httpx.head(
        service.base_url + "/institution/reports/catalog",
        params=GOOD,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert catalog.status_code == 405 and catalog.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "query, name",
    [
        (f"start_date={GOOD['start_date']}&end_date={GOOD['end_date']}&school_ids=1&school_ids=999", "school_ids"),
        (f"start_date={GOOD['start_date']}&start_date=2025-06-01&end_date={GOOD['end_date']}", "start_date"),
        (f"start_date={GOOD['start_date']}&end_date={GOOD['end_date']}&end_date={GOOD['end_date']}", "end_date"),
        (f"start_date={GOOD['start_date']}&end_date={GOOD['end_date']}" + "&x=1" * 5000, "x"),
    ],
)
def test_a_repeated_query_parameter_is_invalid_argument_naming_it(service, query, name):
    r = service.get(f"/institution/reports/catalog?{query}", service.token(institution_id=6))
    message = assert_error(r, 400, "invalid_argument")["message"]
    assert name in message and "repeated" in message


# -- defect 3: what the HTTP front end answers itself ---------------------------------------------


def raw_exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as bytes on a fresh connection; the status, headers and body that came back."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _request_line(target: bytes, method: bytes = b"GET", version: bytes = b"HTTP/1.1") -> bytes:
    return method + b" " + target + b" " + version + b"\r\nHost: t\r\nConnection: close\r\n\r\n"


MALFORMED = {
    "query over 64 KB": _request_line(b"/institution/reports/catalog?q=" + b"a" * 70_000),
    "10,000 parameters": _request_line(
        b"/institution/reports/catalog?" + b"&".join(b"p%d=1" % i for i in range(10_000))
    ),
    "unknown method": _request_line(b"/healthz", method=b"FOO"),
    "garbage request line": b"\x00\x01 garbage\r\n\r\n",
    "Content-Length: abc": b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    "unknown HTTP version": _request_line(b"/healthz", version=b"HTTP/9.9"),
    "bad chunked body": b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_http_gets_an_encore_json_400(service, request_bytes):
    status, headers, body = raw_exchange(service.base_url, request_bytes)
    assert status == 400 and headers["content-type"] == "application/json", body
    assert httpx.Response(400, content=body).json() == {
        "code": "invalid_argument",
        "message": "malformed HTTP request",
        "details": None,
    }
    assert int(headers["content-length"]) == len(body)


def test_a_websocket_handshake_is_refused_in_json(service):
    status, headers, body = raw_exchange(
        service.base_url,
        (
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
    )
    assert status == 404 and headers["content-type"] == "application/json", body
    assert httpx.Response(404, content=body).json()["code"] == "not_found"


def test_the_proxys_own_plain_text_answers_become_json():
    """Unit check of the proxy middleware: Serve's plain-text 408/503/404 keep their status and
    headers in JSON; a request the proxy leaves unanswered (a replica died mid-request) is a 500."""
    import asyncio

    from starlette.responses import PlainTextResponse, Response

    from serve_app.wire_errors import JsonErrorAnswers

    def through(inner) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=JsonErrorAnswers(inner))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/x")

        return asyncio.run(go())

    for status in (404, 408, 503):
        r = through(PlainTextResponse("Request timed out", status, headers={"Retry-After": "2"}))
        assert_error(r, status, {404: "not_found", 408: "deadline_exceeded", 503: "unavailable"}[status])
        assert r.headers["retry-after"] == "2"

    async def silent(scope, receive, send):
        return None

    assert_error(through(silent), 500, "internal")
    ok = through(Response(b"PK\x03\x04", media_type="application/zip"))
    assert ok.status_code == 200 and ok.content == b"PK\x03\x04"


# -- defect 1: a consumer whose backend is down starts, says so, and fails its jobs visibly ---------


def test_readyz_names_a_warehouse_that_is_gone_and_recovers(service):
    """The issue's reproduction: the warehouse file moved away. The consumer's open connection
    outlives the file; readiness opens it afresh, as a restarted consumer would."""
    from pathlib import Path

    ready = service.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "backends": dict.fromkeys(["consumer", "queue", "storage", "warehouse"], "ok"),
    }
    path = Path(urlsplit(service.settings.warehouse_url).path)
    away = path.with_name(path.name + ".away")
    path.rename(away)
    try:
        r = service.get("/readyz")
        assert assert_error(r, 503, "unavailable")["message"] == "unavailable: warehouse"
        assert r.headers["retry-after"] and httpx.head(service.base_url + "/readyz", timeout=30).status_code == 503
    finally:
        away.rename(path)
    assert service.get("/readyz").status_code == 200


def test_a_consumer_starts_without_its_warehouse_and_fails_the_job_with_one_notification(
    ray_session, settings_factory, tmp_path
):
    """The consumer's Ray shell, built while the (explicitly configured) warehouse file is
    missing: it starts, reports the warehouse, and the job ends failed and notified once."""
    import json

    from actors.job.deployment import ConsumerLoop
    from actors.job.ledger import Ledger
    from actors.job.state import Status
    from actors.job.submit import submit
    from actors.queue import open_queue
    from actors.storage import open_storage

    settings = settings_factory(
        tmp_path, warehouse_url=f"duckdb://{tmp_path}/missing.duckdb", max_delivery_attempts=2, reconcile_seconds=60
    )
    loop = ConsumerLoop(settings.model_dump(mode="json"), render_workers=1)
    try:
        report = loop.backends()
        assert report["warehouse"].startswith("no DuckDB file at ")
        assert [name for name, why in report.items() if why] == ["warehouse"]
        storage = open_storage(settings.storage_url, settings.links)
        job = catalog_job(start_date=GOOD["start_date"], end_date=GOOD["end_date"])
        submit(Ledger(storage), open_queue(settings.queue_url), job)
        deadline = time.monotonic() + 60
        while not settings.outbox_path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        [note] = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
        assert note["status"] == "failed" and "data warehouse" in note["error"]
        assert Ledger(storage).get(job.job_id)[0].status is Status.failed
    finally:
        loop.stop()
