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
from tests.test_http_api import GOOD, assert_error

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
        b'"inf"', b'"9999999999"', b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9999999999.5",
        b"true", b"null", b"[9999999999]",
    ],
    ids=lambda p: p.decode(),
)
def test_exp_that_is_not_a_finite_integer_is_invalid_argument(service, payload):
    token = signed_raw(b'{"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": ' + payload + b"}")
    assert "exp" in assert_error(service.get(UNKNOWN_JOB, token), 400, "invalid_argument")["message"]


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_iat_and_nbf_when_present_are_integers_too(service, claim):
    token = signed_raw(b'{"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": 9999999999, "'
                       + claim.encode() + b'": "soon"}')
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
    status = httpx.head(f"{service.base_url}/institution/reports/jobs/{job_id}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert status.status_code == 200 and status.content == b"" and status.headers["cache-control"] == "no-store"
    download, got = httpx.head(url, timeout=30), httpx.get(url, timeout=30)
    assert download.status_code == 200 and download.content == b""
    assert download.headers["content-length"] == str(len(got.content))
    assert download.headers["content-type"] == got.headers["content-type"]
    # HEAD answers what GET would, errors included, and never does what only GET of a report does.
    assert httpx.head(f"{service.base_url}/institution/reports/jobs/{job_id}", timeout=30).status_code == 401
    catalog = httpx.head(service.base_url + "/institution/reports/catalog", params=GOOD,
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
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
