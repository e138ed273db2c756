"""What routes take as FastAPI dependencies: the caller, from the bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve_app.auth import Authenticator, Principal

bearer = HTTPBearer(auto_error=False, description="JWT with institutionId, userId, subdomain, exp")


def use_authenticator(request: Request) -> Authenticator:
    """The replica's token checker, set on the app when the replica starts."""
    return request.app.state.authenticator


async def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    authenticate: Annotated[Authenticator, Depends(use_authenticator)],
) -> Principal:
    """The caller; a missing, malformed or expired token is a 401 before the route runs."""
    return authenticate(f"Bearer {credentials.credentials}" if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
