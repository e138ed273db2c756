"""SPEC §2a: finding reports again (the caller's jobs, newest first) and downloading a finished
one through a freshly signed link, over real HTTP against the running Serve app."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from actors.job.ledger import Ledger
from actors.job.state import JobState
from actors.storage import open_storage
from tests.support.jobs import catalog_job
from tests.support.workbook import read_both

GOOD = {"start_date": "2025-01-01", "end_date": "2025-12-31"}
INSTITUTION = 31  # jobs of their own: the session's other tests use other institutions


def assert_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status and r.json()["code"] == code, r.text
    return r.json()["message"]


def listing(service, token, **params) -> dict:
    r = service.get("/institution/reports/jobs", token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_callers_jobs_newest_first_page_by_page(service):
    me = service.token(institution_id=INSTITUTION, user_id=3)
    ids = []
    for school in ("10", "12", "10,12"):
        ids.append(service.request_report(me, **GOOD, school_ids=school).json()["results"]["id"])
        time.sleep(0.01)  # distinct milliseconds: the order is the order of the requests
    neighbour = service.token(institution_id=INSTITUTION, user_id=4)
    theirs = service.request_report(neighbour, **GOOD).json()["results"]["id"]

    first = listing(service, me, limit="2")
    assert [j["id"] for j in first["results"]] == ids[:0:-1] and first["nextCursor"]
    second = listing(service, me, limit="2", cursor=first["nextCursor"])
    assert [j["id"] for j in second["results"]] == ids[:1] and second["nextCursor"] is None
    assert theirs not in {j["id"] for j in first["results"] + second["results"]}
    assert [j["id"] for j in listing(service, neighbour)["results"]] == [theirs]

    for job_id in ids:
        service.wait_done(job_id, me)
    done = listing(service, me, status="done")["results"]
    assert [j["id"] for j in done] == ids[::-1]
    assert listing(service, me, status="failed") == {"results": [], "nextCursor": None}
    body = done[-1]
    assert body["parameters"] == {
        "startDate": "2025-01-01",
        "endDate": "2025-12-31",
        "schoolIds": [10],
        "format": "xlsx",
        "locale": "pt-BR",
        "timezone": "UTC",
    }
    assert body["sizeBytes"] > 1000 and body["etaSeconds"] is None and body["downloads"] == 0
    # The status route has the same body.
    assert service.get(f"/institution/reports/jobs/{body['id']}", me).json()["results"] == body


def test_bad_listing_parameters_are_invalid_argument(service):
    me = service.token(institution_id=INSTITUTION, user_id=3)
    for params, words in (({"status": "gone"}, "status"), ({"limit": "0"}, "limit"), ({"cursor": "x"}, "cursor")):
        assert words in assert_error(
            service.get("/institution/reports/jobs", me, params=params), 400, "invalid_argument"
        )
    assert_error(service.get("/institution/reports/jobs"), 401, "unauthenticated")


def test_a_finished_report_is_fetched_again_through_a_fresh_link(service, ray_session, tmp_path):
    me = service.token(institution_id=INSTITUTION, user_id=5)
    job_id = service.request_report(me, **GOOD).json()["results"]["id"]
    status = service.wait_done(job_id, me)
    path = f"/institution/reports/jobs/{job_id}/file"

    r = service.get(path, me, follow_redirects=False)
    assert r.status_code == 302 and r.headers["cache-control"] == "no-store"
    link = r.headers["location"]
    assert link != status["url"]  # signed now, not the notification's link
    expires = int(dict(p.split("=") for p in link.split("?")[1].split("&"))["expires"])
    assert 880 <= expires - time.time() <= 900  # 15 minutes
    download = httpx.get(link, timeout=30)
    assert download.status_code == 200
    (tmp_path / "again.xlsx").write_bytes(download.content)
    assert read_both(tmp_path / "again.xlsx")["Catálogo"][0][0] == "ID"  # this institution has no courses
    assert service.get(path, me, follow_redirects=True).content == download.content
    assert service.get(f"/institution/reports/jobs/{job_id}", me).json()["results"]["downloads"] == 2

    other = service.token(institution_id=INSTITUTION, user_id=6)
    assert_error(service.get(path, other, follow_redirects=False), 404, "not_found")
    assert service.get(f"/institution/reports/jobs/{job_id}", me).json()["results"]["downloads"] == 2

    # One JSON log line per download: job, user, institution.
    logs = Path(ray_session._private.worker.global_worker.node.get_logs_dir_path()) / "serve"
    deadline, lines = time.monotonic() + 20, []
    while time.monotonic() < deadline and len(lines) < 2:
        lines = [
            record
            for log in logs.glob("replica_catalog-report_ReportsAPI_*.log")
            for record in map(json.loads, log.read_text().splitlines())
            if record.get("message") == "download" and record.get("job") == job_id
        ]
        time.sleep(0.5)
    assert len(lines) == 2 and {(r["user_id"], r["institution_id"]) for r in lines} == {(5, INSTITUTION)}


def test_a_job_without_a_file_has_nothing_to_download(service):
    """A queued job (its record written here, so it stays queued) is a failed precondition."""
    job = catalog_job(institution_id=INSTITUTION, user_id=9)
    Ledger(open_storage(service.settings.storage_url, service.settings.links)).create(JobState.accepted(job))
    me = service.token(institution_id=INSTITUTION, user_id=9)
    r = service.get(f"/institution/reports/jobs/{job.job_id}/file", me, follow_redirects=False)
    assert "queued" in assert_error(r, 400, "failed_precondition")
    assert [j["status"] for j in listing(service, me)["results"]] == ["queued"]


def test_delete_cancels_a_queued_job_and_deletes_a_finished_ones_file(service):
    """SPEC §2a, DELETE, over HTTP: the owner only; canceled and deleted jobs answer the same
    again; a deleted job's links stop working (the consumer's side: tests/job/test_cancel.py)."""
    me = service.token(institution_id=INSTITUTION, user_id=10)
    job_id = service.request_report(me, **GOOD).json()["results"]["id"]
    status = service.wait_done(job_id, me)
    old_link = status["url"]
    fresh = service.get(f"/institution/reports/jobs/{job_id}/file", me, follow_redirects=False).headers["location"]
    assert httpx.get(old_link, timeout=30).status_code == 200

    other = service.token(institution_id=INSTITUTION, user_id=11)
    assert_error(
        httpx.delete(f"{service.base_url}/institution/reports/jobs/{job_id}", headers=auth(other)), 404, "not_found"
    )
    r = httpx.delete(f"{service.base_url}/institution/reports/jobs/{job_id}", headers=auth(me), timeout=30)
    assert r.status_code == 200 and r.json()["results"]["status"] == "deleted" and r.json()["results"]["url"] is None
    for link in (old_link, fresh):
        assert httpx.get(link, timeout=30).status_code in (403, 404)
    again = httpx.delete(f"{service.base_url}/institution/reports/jobs/{job_id}", headers=auth(me), timeout=30)
    assert again.json()["results"] == r.json()["results"]
    r = service.get(f"/institution/reports/jobs/{job_id}/file", me, follow_redirects=False)
    assert "deleted" in assert_error(r, 400, "failed_precondition")

    queued = catalog_job(institution_id=INSTITUTION, user_id=10)  # held queued: its message is never sent
    Ledger(open_storage(service.settings.storage_url, service.settings.links)).create(JobState.accepted(queued))
    r = httpx.delete(f"{service.base_url}/institution/reports/jobs/{queued.job_id}", headers=auth(me), timeout=30)
    assert r.json()["results"]["status"] == "canceled"
    assert [j["status"] for j in listing(service, me, status="canceled")["results"]] == ["canceled"]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
