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
