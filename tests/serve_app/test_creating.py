"""SPEC §2a, creating safely: POST with a JSON body beside the GET, the options, Idempotency-Key
and identical requests in flight, over real HTTP against the running Serve app."""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyarrow.parquet as pq
import pytest

from actors.job.ledger import Ledger
from actors.job.requests import Requests
from actors.job.state import JobState
from actors.storage import open_storage
from tests.serve_app.test_http_api import GOOD, assert_error
from tests.support.jobs import catalog_job

INSTITUTION = 32  # jobs of their own: the session's other tests use other institutions
BODY = {"startDate": "2025-01-01", "endDate": "2025-12-31"}


def post(service, token: str, body, **headers) -> httpx.Response:
    headers["Authorization"] = f"Bearer {token}"
    kwargs = {"content": body} if isinstance(body, (str, bytes)) else {"json": body}
    return httpx.post(f"{service.base_url}/institution/reports/catalog", headers=headers, timeout=30, **kwargs)


def test_a_post_is_answered_like_the_get_with_a_location(service):
    me = service.token(institution_id=INSTITUTION, user_id=1)
    body = {**BODY, "schoolIds": [12, 10], "format": "xlsx", "locale": "pt-BR", "timezone": "America/Sao_Paulo"}
    r = post(service, me, body)
    assert r.status_code == 200 and set(r.json()) == {"results"}, r.text
    job_id = r.json()["results"]["id"]
    assert r.headers["location"] == f"/institution/reports/jobs/{job_id}"
    status = service.wait_done(job_id, me)
    assert status["status"] == "done" and status["parameters"] == {
        "startDate": "2025-01-01",
        "endDate": "2025-12-31",
        "schoolIds": [10, 12],
        "format": "xlsx",
        "locale": "pt-BR",
        "timezone": "America/Sao_Paulo",
    }


@pytest.mark.parametrize(
    "body, words",
    [
        ({**BODY, "institutionId": 2}, "institutionId"),  # unknown fields, the institution above all
        ("not json", "JSON"),
        ({**BODY, "startDate": 20250101}, "startDate"),
        ({**BODY, "startDate": "2025-02-30"}, "startDate is not a valid date"),
        ({**BODY, "startDate": "01/01/2025"}, "startDate"),
        ({**BODY, "schoolIds": "10,20"}, "schoolIds"),
        ({**BODY, "schoolIds": [0]}, "schoolIds"),
        ({**BODY, "schoolIds": [True]}, "schoolIds"),
        ("[1, 2]", "JSON object"),
        ({"startDate": "2025-02-01", "endDate": "2025-01-01"}, "before or equal"),
        ({"endDate": "2025-01-01"}, "startDate"),
        ({**BODY, "timezone": "Mars/Olympus"}, "timezone"),
        ({**BODY, "format": "pdf"}, "format"),
    ],
)
def test_bad_bodies_are_invalid_argument(service, body, words):
    me = service.token(institution_id=INSTITUTION, user_id=2)
    message = assert_error(post(service, me, body), 400, "invalid_argument")["message"]
    assert words in message, message


def test_the_get_takes_the_same_options(service):
    me = service.token(institution_id=INSTITUTION, user_id=3)
    r = service.request_report(me, **GOOD, timezone="America/Sao_Paulo", format="xlsx", locale="pt-BR")
    job_id = r.json()["results"]["id"]
    assert "location" not in r.headers  # the seed's GET answers exactly as before
    assert service.wait_done(job_id, me)["parameters"]["timezone"] == "America/Sao_Paulo"
    for params, words in (({"timezone": "Nowhere/Else"}, "timezone"), ({"locale": "fr"}, "locale")):
        assert words in assert_error(service.request_report(me, **GOOD, **params), 400, "invalid_argument")["message"]


def test_a_replayed_key_answers_with_the_first_job_and_another_request_with_it_is_a_conflict(service):
    me = service.token(institution_id=INSTITUTION, user_id=4)
    first = post(service, me, BODY, **{"Idempotency-Key": "order-42"}).json()["results"]["id"]
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda _: post(service, me, BODY, **{"Idempotency-Key": "order-42"}), range(4)))
    assert {r.json()["results"]["id"] for r in again} == {first}
    via_get = service.get("/institution/reports/catalog", me, params=GOOD, headers={"Idempotency-Key": "order-42"})
    assert via_get.json()["results"]["id"] == first  # the same request, asked the other way
    other = post(service, me, {**BODY, "endDate": "2025-06-30"}, **{"Idempotency-Key": "order-42"})
    assert_error(other, 409, "already_exists")
    someone_else = service.token(institution_id=INSTITUTION, user_id=5)
    assert post(service, someone_else, BODY, **{"Idempotency-Key": "order-42"}).json()["results"]["id"] != first
    assert_error(post(service, me, BODY, **{"Idempotency-Key": "é".encode()}), 400, "invalid_argument")
    assert_error(post(service, me, BODY, **{"Idempotency-Key": "k" * 256}), 400, "invalid_argument")
    service.wait_done(first, me)


def test_an_identical_request_while_the_first_is_queued_gets_the_first_job(service):
    """The first request's job is held queued here (recorded as the API records it, its message
    never sent), so the duplicate surely meets it in flight; done, it no longer answers."""
    job = catalog_job(institution_id=INSTITUTION, user_id=6, school_ids=[10], timezone=service.settings.timezone)
    ledger = Ledger(open_storage(service.settings.storage_url, service.settings.links))
    assert Requests(ledger).claim(job, None).new
    ledger.create(JobState.accepted(job))
    me = service.token(institution_id=INSTITUTION, user_id=6)
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda _: service.request_report(me, **GOOD, school_ids="10"), range(4)))
    assert {r.json()["results"]["id"] for r in again} == {job.job_id}
    assert service.request_report(me, **GOOD, school_ids="12").json()["results"]["id"] != job.job_id
    state, gen = ledger.get(job.job_id)
    ledger.put(state.claimed("test").succeeded(rows=0, url="u", expires_at=None, object_key="k", timings={}), gen)
    later = service.request_report(me, **GOOD, school_ids="10").json()["results"]["id"]
    assert later != job.job_id  # the first is done: a new report
    service.wait_done(later, me)


def test_replays_are_not_counted_by_the_rate_limit(service):
    """60 new requests in the minute and no more; 10 replays among them change nothing, and a
    replay is answered even once the limit is reached."""
    me = service.token(institution_id=INSTITUTION + 100, user_id=7)
    key = {"Idempotency-Key": "first"}
    first = service.get("/institution/reports/catalog", me, params={**GOOD, "school_ids": "1"}, headers=dict(key))
    first_id = first.json()["results"]["id"]
    codes = []
    for i in range(2, 62):
        codes.append(service.request_report(me, **GOOD, school_ids=str(i)).status_code)
        if i % 6 == 0:
            replay = service.get(
                "/institution/reports/catalog", me, params={**GOOD, "school_ids": "1"}, headers=dict(key)
            )
            assert replay.json()["results"]["id"] == first_id
    assert codes == [200] * 59 + [429], codes
    replay = service.get("/institution/reports/catalog", me, params={**GOOD, "school_ids": "1"}, headers=dict(key))
    assert replay.status_code == 200 and replay.json()["results"]["id"] == first_id


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_csv_and_parquet_are_produced_named_and_served_with_their_types(service, tmp_path, file_format):
    """The same pipeline makes the other formats (SPEC §2a); a courses-holding institution, so the
    rows are read back (their values: tests/report/test_formats.py)."""
    me = service.token(institution_id=1, user_id=400)
    job_id = post(service, me, {**BODY, "format": file_format, "locale": "es"}).json()["results"]["id"]
    status = service.wait_done(job_id, me)
    assert status["status"] == "done" and f"catalogo_2025-01-01_2025-12-31.{file_format}" in status["url"], status
    r = service.get(f"/institution/reports/jobs/{job_id}/file", me, follow_redirects=True)
    assert r.status_code == 200 and len(r.content) == status["sizeBytes"]
    path = tmp_path / f"report.{file_format}"
    path.write_bytes(r.content)
    if file_format == "csv":
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
        assert rows[0][:2] == ["ID", "Título"] and len(rows) == status["rows"] + 1
    else:
        assert r.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(path)
        assert table.column_names[:4] == ["ID", "Título", "URL de Visualización (Alumno)", "Estado"]
        assert table.num_rows == status["rows"] > 0
