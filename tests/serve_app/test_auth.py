"""Bearer JWT → Principal (serve_app/auth.py): what is refused and how; no Serve."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from serve_app.auth import Authenticator, Principal, mint_token
from serve_app.errors import ApiError

SECRET = "unit-test-secret-unit-test-secret-0123456789"
CLAIMS = {"institutionId": 1, "userId": 7, "subdomain": "demo"}
authenticate = Authenticator(SECRET, ["HS256"], leeway_seconds=30)


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def refused(header: str | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        authenticate(header)
    return caught.value


def bearer(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return "Bearer " + jwt.encode(claims, key, algorithm=algorithm)


def later(seconds: int = 600) -> int:
    return int(time.time()) + seconds


def test_a_good_token_names_the_caller():
    assert authenticate(bearer({**CLAIMS, "exp": later()})) == Principal(institution_id=1, user_id=7, subdomain="demo")
    assert authenticate("Bearer " + mint_token(SECRET, 3, 9, "x-1")).institution_id == 3


def test_user_id_spelled_userID_is_accepted():
    token = bearer({"institutionId": 1, "userID": 7, "subdomain": "demo", "exp": later()})
    assert authenticate(token).user_id == 7
    assert "disagree" in refused(bearer({**CLAIMS, "userID": 8, "exp": later()})).message


@pytest.mark.parametrize(
    "claims, message",
    [
        ({"institutionId": None}, "institutionId"),
        ({"institutionId": "1"}, "institutionId"),
        ({"institutionId": 0}, "institutionId"),
        ({"institutionId": 1.5}, "institutionId"),
        ({"institutionId": True}, "institutionId"),
        ({"userId": None}, "userId"),
        ({"userId": -7}, "userId"),
        ({"subdomain": ""}, "subdomain"),
        ({"subdomain": "Demo!"}, "subdomain"),
        ({"subdomain": 12}, "subdomain"),
        ({"exp": None}, "exp"),
    ],
)
def test_malformed_claims_are_a_400_naming_the_claim(claims, message):
    body = {**CLAIMS, "exp": later(), **claims}
    error = refused(bearer({k: v for k, v in body.items() if v is not None}))
    assert error.status == 400 and message in error.message


def _rsa_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return bearer({**CLAIMS, "exp": later()}, pem.decode(), "RS256")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer " + b64({"alg": "none", "typ": "JWT"}) + "." + b64({**CLAIMS, "exp": 9999999999}) + ".",
        bearer({**CLAIMS, "exp": 9999999999}, "wrong-secret-wrong-secret-wrong-secret"),
        bearer({**CLAIMS, "exp": 9999999999}, SECRET, "HS512"),  # an algorithm that is not configured
        _rsa_token(),
    ],
    ids=["none", "basic", "empty", "garbage", "three-parts", "alg-none", "wrong-key", "hs512", "rs256"],
)
def test_token_attacks_are_a_401(header):
    assert refused(header).status == 401


def test_time_claims_get_the_leeway_and_no_more():
    assert authenticate(bearer({**CLAIMS, "exp": later(-20)})).user_id == 7  # within 30 s of skew
    assert refused(bearer({**CLAIMS, "exp": later(-120)})).message == "token expired"
    assert refused(bearer({**CLAIMS, "exp": later(), "nbf": later(120)})).message == "token not yet valid"
    assert authenticate(bearer({**CLAIMS, "exp": later(), "iat": later(20)})).user_id == 7


def test_a_tampered_payload_is_a_401():
    head, payload, sig = jwt.encode({**CLAIMS, "exp": later()}, SECRET, algorithm="HS256").split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["institutionId"] = 2
    assert refused("Bearer " + ".".join([head, b64(forged), sig])).status == 401
