"""Bearer JWT → Principal. The signature and algorithm are checked before any claim is read;
institution and user come only from the token; the token's times get a small leeway for clock
skew between the issuer and this service."""

from __future__ import annotations

import time
from typing import Annotated

import jwt
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from serve_app.errors import ApiError

_Positive = Annotated[StrictInt, Field(gt=0, le=2**63 - 1)]
# A NumericDate in whole seconds. Strict: a string, a fraction, NaN or an infinity is refused, so
# no malformed ``exp`` can make a token valid forever (PyJWT itself would take ``"9999999999"``).
_Seconds = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
# The first decode checks only what proves who signed the token; times come once they are known
# to be numbers.
_SIGNATURE_ONLY = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False}


class Principal(BaseModel):
    institution_id: int
    user_id: int
    subdomain: str


class _Claims(BaseModel):
    model_config = ConfigDict(extra="ignore")

    institutionId: _Positive
    userId: _Positive | None = None
    userID: _Positive | None = None
    subdomain: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")]
    exp: _Seconds
    nbf: _Seconds | None = None
    iat: _Seconds | None = None

    @model_validator(mode="after")
    def _user(self) -> _Claims:
        ids = {i for i in (self.userId, self.userID) if i is not None}
        if len(ids) != 1:
            raise ValueError("userId is missing" if not ids else "userId and userID disagree")
        return self


class Authenticator:
    def __init__(self, key: str, algorithms: list[str], leeway_seconds: float):
        self.key, self.algorithms, self.leeway = key, algorithms, leeway_seconds

    def __call__(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing bearer token")
        token = token.strip()
        try:
            claims = jwt.decode(token, self.key, algorithms=self.algorithms, options=_SIGNATURE_ONLY)
        except jwt.InvalidTokenError:
            raise ApiError(401, "invalid token") from None
        try:
            parsed = _Claims.model_validate(claims)
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = err["msg"].removeprefix("Value error, ")
            where = f"claim {err['loc'][0]}" if err["loc"] else "claims"
            raise ApiError(400, f"invalid token {where}: {msg}") from None
        try:
            jwt.decode(token, self.key, algorithms=self.algorithms, leeway=self.leeway, options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "token expired") from None
        except jwt.ImmatureSignatureError:  # nbf or iat ahead of our clock by more than the leeway
            raise ApiError(401, "token not yet valid") from None
        except jwt.InvalidTokenError:
            raise ApiError(401, "invalid token") from None
        return Principal(
            institution_id=parsed.institutionId, user_id=parsed.userId or parsed.userID, subdomain=parsed.subdomain
        )


def mint_token(
    secret_or_key: str,
    institution_id: int,
    user_id: int,
    subdomain: str,
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
) -> str:
    """A token for local use (``catalog-report token``) and tests."""
    now = int(time.time())
    claims = {
        "institutionId": institution_id,
        "userId": user_id,
        "subdomain": subdomain,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret_or_key, algorithm=algorithm)
