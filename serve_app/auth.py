"""Bearer JWT → Principal. The signature and algorithm are checked before any claim is read;
institution and user come only from the token."""

from __future__ import annotations

import time
from typing import Annotated

import jwt
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from serve_app.errors import ApiError

_Positive = Annotated[StrictInt, Field(gt=0, le=2**63 - 1)]


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
    exp: StrictInt | float

    @model_validator(mode="after")
    def _user(self) -> "_Claims":
        ids = {i for i in (self.userId, self.userID) if i is not None}
        if len(ids) != 1:
            raise ValueError("userId is missing" if not ids else "userId and userID disagree")
        return self


class Authenticator:
    def __init__(self, key: str, algorithms: list[str]):
        self.key, self.algorithms = key, algorithms

    def __call__(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing bearer token")
        try:
            claims = jwt.decode(
                token.strip(), self.key, algorithms=self.algorithms,
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            raise ApiError(401, "invalid token") from None
        try:
            parsed = _Claims.model_validate(claims)
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = err["msg"].removeprefix("Value error, ")
            where = f"claim {err['loc'][0]}" if err["loc"] else "claims"
            raise ApiError(400, f"invalid token {where}: {msg}") from None
        if parsed.exp <= time.time():
            raise ApiError(401, "token expired")
        return Principal(institution_id=parsed.institutionId, user_id=parsed.userId or parsed.userID,
                         subdomain=parsed.subdomain)


def mint_token(secret_or_key: str, institution_id: int, user_id: int, subdomain: str,
               ttl_seconds: int = 3600, algorithm: str = "HS256") -> str:
    """A token for local use (``catalog-report token``) and tests."""
    now = int(time.time())
    claims = {"institutionId": institution_id, "userId": user_id, "subdomain": subdomain,
              "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret_or_key, algorithm=algorithm)
