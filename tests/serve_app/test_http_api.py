"""The HTTP contract (SPEC §2) over real HTTP against the running Serve app."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.conftest import SECRET
from tests.support.workbook import read_both

GOOD = {"start_date": "2025-01-01", "end_date": "2025-12-31"}


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"code", "message", "details"} and body["details"] is None
    assert body["code"] == code and body["message"]
    return body


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_accepted_job_runs_end_to_end(service, tmp_path):
    token = service.token()
    r = service.request_report(token, **GOOD, school_ids="10,10,12")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    job_id = r.json()["results"]["id"]
    assert set(r.json()) == {"results"} and set(r.json()["results"]) == {"id"}
    status = service.wait_done(job_id, token)
    assert status["status"] == "done" and status["progress"] == 1 and status["rows"] == 7
    assert status["createdAt"].endswith("Z") and status["finishedAt"] and status["expiresAt"]
    [note] = [n for n in service.notifications() if n["jobId"] == job_id]
    assert note["url"] == status["url"] and note["userId"] == 7 and note["institutionId"] == 1
    download = httpx.get(note["url"], timeout=30)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/vnd.openxmlformats")
    (tmp_path / "r.xlsx").write_bytes(download.content)
    assert len(read_both(tmp_path / "r.xlsx")["Catálogo"]) == 8


# Every case of the parameter and token rules is in test_params.py and test_auth.py; here, that
# each kind of refusal reaches the client as the SPEC's JSON error over real HTTP.
@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "start_date is required"),
        ({"start_date": "2025-03-02", "end_date": "2025-03-01"}, "start_date must be before or equal to end_date"),
        ({**GOOD, "school_ids": "1,,2"}, "school_ids"),
    ],
)
def test_bad_parameters_are_invalid_argument(service, params, message):
    body = assert_error(service.request_report(service.token(), **params), 400, "invalid_argument")
    assert message in body["message"]


def test_limits_that_are_fine(service):
    token = service.token(institution_id=5)
    ok = service.request_report(token, **GOOD, school_ids=",".join(["9223372036854775807"] * 1000))
    assert ok.status_code == 200
    assert service.request_report(token, start_date="2025-01-01", end_date="2025-01-01").status_code == 200


@pytest.mark.parametrize("claims, message", [({"institutionId": "1"}, "institutionId"), ({"exp": None}, "exp")])
def test_malformed_claims_are_invalid_argument(service, claims, message):
    body = {"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": int(time.time()) + 600}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    token = jwt.encode(body, SECRET, algorithm="HS256")
    assert message in assert_error(service.request_report(token, **GOOD), 400, "invalid_argument")["message"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        # alg none, unsigned
        "Bearer "
        + b64({"alg": "none", "typ": "JWT"})
        + "."
        + b64({"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": 9999999999})
        + ".",
        # right claims, wrong key
        "Bearer "
        + jwt.encode(
            {"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": 9999999999},
            "wrong-secret-wrong-secret-wrong-secret",
            algorithm="HS256",
        ),
    ],
)
def test_token_attacks_are_unauthenticated(service, header):
    headers = {"Authorization": header} if header else {}
    assert_error(service.get("/institution/reports/catalog", params=GOOD, headers=headers), 401, "unauthenticated")


def test_expired_and_tampered_tokens_are_unauthenticated(service):
    expired = service.token(ttl=-120)  # past the 30 s clock-skew leeway
    assert "expired" in assert_error(service.request_report(expired, **GOOD), 401, "unauthenticated")["message"]
    head, payload, sig = service.token().split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["institutionId"] = 2
    tampered = ".".join([head, b64(forged), sig])
    assert_error(service.request_report(tampered, **GOOD), 401, "unauthenticated")


def test_institution_comes_only_from_the_token(service):
    token = service.token(institution_id=2, user_id=8)
    r = service.request_report(token, **GOOD, institutionId="1", institution_id="1", userId="7")
    job = service.wait_done(r.json()["results"]["id"], token)
    assert job["rows"] == 1  # institution 2 has one course


def test_unknown_routes_and_methods_are_json(service):
    assert_error(service.get("/nope"), 404, "not_found")
    assert_error(service.get("/institution/reports/unknown", service.token()), 404, "not_found")
    r = httpx.put(service.base_url + "/institution/reports/catalog", timeout=10)
    assert r.status_code == 405 and r.json()["code"] == "unimplemented"


def test_status_is_visible_only_to_its_requester(service):
    owner = service.token(institution_id=1, user_id=7)
    job_id = service.request_report(owner, **GOOD).json()["results"]["id"]
    assert service.get(f"/institution/reports/jobs/{job_id}", owner).status_code == 200
    for stranger in (service.token(institution_id=1, user_id=8), service.token(institution_id=2, user_id=7)):
        assert_error(service.get(f"/institution/reports/jobs/{job_id}", stranger), 404, "not_found")
    assert_error(service.get("/institution/reports/jobs/does-not-exist", owner), 404, "not_found")
    assert_error(service.get("/institution/reports/jobs/..%2F..%2Fsecrets", owner), 404, "not_found")
    assert_error(service.get(f"/institution/reports/jobs/{job_id}"), 401, "unauthenticated")
    service.wait_done(job_id, owner)


def test_job_ids_are_the_services_own_and_in_the_ledger_when_answered(service):
    """A ULID the service made, not the queue's message id (which queues may reuse), with its
    record and message already in the ledger."""
    from ulid import ULID

    from actors.job.ledger import Ledger
    from actors.storage import open_storage

    token = service.token()
    before = time.time()
    job_id = service.request_report(token, **GOOD, school_ids="12").json()["results"]["id"]
    assert before - 1 <= ULID.from_str(job_id).timestamp <= time.time() + 1
    state, _ = Ledger(open_storage(service.settings.storage_url, service.settings.links)).get(job_id)
    assert (state.job.job_id, state.job.version, state.job.school_ids) == (job_id, 2, [12])
    assert (state.job.format, state.job.locale, state.job.timezone) == ("xlsx", "pt-BR", "UTC")
    service.wait_done(job_id, token)


def test_a_ledger_that_cannot_be_written_is_503_and_nothing_is_queued(service):
    """The job is recorded before it is published: when that write fails the request is
    refused (503, retry later), instead of a 200 for a job the ledger will never know."""
    jobs = service.data_dir / "files" / "jobs"
    aside = jobs.with_name("jobs-aside")
    jobs.mkdir(parents=True, exist_ok=True)  # no job recorded yet when this test runs first
    jobs.rename(aside)
    jobs.write_text("not a directory: every ledger write fails")
    try:
        r = service.request_report(service.token(institution_id=50_005), **GOOD)
    finally:
        jobs.unlink()
        aside.rename(jobs)
    assert_error(r, 503, "unavailable")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert not any(n["institutionId"] == 50_005 for n in service.notifications())


def test_a_queue_outage_is_a_prompt_503_and_leaves_no_record(service):
    """The embedded queue's write lock held elsewhere (as a stuck process would): the request
    gives up after the publish timeout with 503 and Retry-After, and withdraws the job's record."""
    import sqlite3

    jobs = service.data_dir / "files" / "jobs"
    before = set(jobs.glob("*.json"))
    holder = sqlite3.connect(service.data_dir / "queue" / "queue.sqlite3", isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        r = service.request_report(service.token(institution_id=6), **GOOD)
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_error(r, 503, "unavailable")
    assert "queue" in r.json()["message"] and 1 <= int(r.headers["retry-after"]) <= 60
    assert elapsed < service.settings.publish_timeout_seconds + 3
    assert set(jobs.glob("*.json")) == before


def test_health_says_when_the_queue_is_unusable(service):
    import sqlite3

    assert service.get("/healthz").json() == {"status": "ok"}
    db = sqlite3.connect(service.data_dir / "queue" / "queue.sqlite3", isolation_level=None, timeout=30)
    db.execute("ALTER TABLE messages RENAME TO messages_aside")
    try:
        r = service.get("/healthz")
    finally:
        db.execute("ALTER TABLE messages_aside RENAME TO messages")
        db.close()
    body = assert_error(r, 503, "unavailable")
    assert body["message"].startswith("queue: ") and "no such table" in body["message"]
    assert service.get("/healthz").status_code == 200


def test_a_job_whose_message_is_lost_while_notifying_is_notified_once(service, ray_session):
    """The outbox cannot be written for a moment, so the finished job hands its message back to
    retry the notification; then the queue loses that message. The reconciler publishes the job
    again and it is notified exactly once."""
    import sqlite3

    from actors.job.ledger import Ledger
    from actors.storage import open_storage
    from tests.cluster.test_observability import scrape

    token = service.token(institution_id=2, user_id=11)
    outbox = service.data_dir / "notifications.jsonl"
    aside = outbox.with_name("notifications-aside.jsonl")
    outbox.touch()
    outbox.rename(aside)
    outbox.mkdir()  # appending to it fails
    ledger = Ledger(open_storage(service.settings.storage_url, service.settings.links))
    try:
        job_id = service.request_report(token, **GOOD).json()["results"]["id"]
        deadline = time.monotonic() + 30
        while not ((found := ledger.get(job_id)) and found[0].status.value == "done" and found[0].worker is None):
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        db = sqlite3.connect(service.data_dir / "queue" / "queue.sqlite3", isolation_level=None, timeout=30)
        deleted = db.execute(
            "DELETE FROM messages WHERE id = ? OR CAST(data AS TEXT) LIKE ?", (job_id, f"%{job_id}%")
        ).rowcount
        db.close()
    finally:
        outbox.rmdir()
        aside.rename(outbox)
    assert deleted == 1
    status = service.wait_done(job_id, token)
    deadline = time.monotonic() + 60
    while not [n for n in service.notifications() if n["jobId"] == job_id]:
        assert time.monotonic() < deadline, "never notified"
        time.sleep(0.5)
    time.sleep(8)  # would a second notification follow?
    assert [n["url"] for n in service.notifications() if n["jobId"] == job_id] == [status["url"]]
    assert ledger.get(job_id)[0].redrives >= 1
    scrape(ray_session.metrics_url, [r'ray_catalog_jobs_redriven_total\{[^}]*status="done"[^}]*\} [1-9]'])


def test_signed_link_rejects_tampering_and_expiry(service):
    token = service.token()
    job_id = service.request_report(token, **GOOD).json()["results"]["id"]
    url = service.wait_done(job_id, token)["url"]
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = service.base_url + parts.path
    assert httpx.get(url, timeout=10).status_code == 200
    cases = [
        {**q, "signature": q["signature"][:-2] + "AA"},
        {**q, "expires": str(int(q["expires"]) + 1)},
        {"expires": q["expires"]},
        {},
    ]
    for params in cases:
        assert_error(httpx.get(base, params=params, timeout=10), 403, "permission_denied")
    # A link for another file, signed for this one, does not open it.
    other = base.replace(job_id, "0" * 32)
    assert_error(httpx.get(other, params=q, timeout=10), 403, "permission_denied")
    # An expired, correctly signed link.
    from actors.storage.local import LinkSigner

    key = parts.path.split("/files/", 1)[1]
    past = int(time.time()) - 10
    sig = LinkSigner(service.settings.link_secret).sign(key, past)
    assert_error(httpx.get(base, params={"expires": past, "signature": sig}, timeout=10), 403, "permission_denied")


def test_rate_limit_is_shared_across_replicas(service):
    """61 requests for one institution through two HTTP replicas: exactly 60 accepted."""
    from ray import serve

    assert serve.status().applications["catalog-report"].deployments["ReportsAPI"].replica_states.get("RUNNING") == 2
    token = service.token(institution_id=3)
    with ThreadPoolExecutor(8) as pool:
        # Distinct requests: identical ones in flight would share one job, uncounted.
        codes = list(pool.map(lambda i: service.request_report(token, **GOOD, school_ids=str(i + 1)), range(61)))
    statuses = sorted(r.status_code for r in codes)
    assert statuses.count(200) == 60 and statuses.count(429) == 1
    refused = [r for r in codes if r.status_code == 429][0]
    assert_error(refused, 429, "resource_exhausted")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another institution is not affected, and status polls are not counted.
    assert service.request_report(service.token(institution_id=4), **GOOD).status_code == 200
    job_id = codes[0].json()["results"]["id"]
    for _ in range(3):
        assert service.get(f"/institution/reports/jobs/{job_id}", token).status_code == 200


def test_health_and_openapi(service):
    assert service.get("/healthz").json() == {"status": "ok"}
    spec = service.get("/openapi.json").json()
    assert "/institution/reports/catalog" in spec["paths"]
    assert service.get("/docs").status_code == 200


def test_overload_is_shed_with_a_json_503(service, ray_session, tmp_path):
    """A replica past its in-flight limit answers 503 ``unavailable`` in JSON, never Serve's
    plain-text backpressure page."""
    from ray import serve

    from serve_app.app import build_app
    from tests.conftest import base_settings

    values = base_settings(
        tmp_path, service.settings.warehouse_url.removeprefix("duckdb://"), max_in_flight=1, render_workers=1
    )
    serve.run(build_app(values), name="shed", route_prefix="/shed")
    try:
        url = service.base_url + "/shed/institution/reports/catalog"

        def request(i: int) -> httpx.Response:
            # Each a different (empty) institution: real requests that publish, never rate limited.
            token = service.token(institution_id=10_000 + i)
            return httpx.get(url, params=GOOD, headers={"Authorization": f"Bearer {token}"}, timeout=30)

        seen: set[int] = set()
        with ThreadPoolExecutor(32) as pool:
            for burst in range(10):
                for r in pool.map(request, range(burst * 64, burst * 64 + 64)):
                    assert r.headers["content-type"].startswith("application/json"), r.text
                    seen.add(r.status_code)
                    if r.status_code == 503:
                        assert_error(r, 503, "unavailable")
                        assert r.headers["retry-after"] == "1"
                if 503 in seen:
                    break
        assert seen <= {200, 503} and 503 in seen
    finally:
        serve.delete("shed")
