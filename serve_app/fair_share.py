"""No client can take the HTTP proxy's attention from the others.

Every request Serve's proxy forwards costs it milliseconds of routing (measured on the busy 2-core
machine this was written on: about 10 ms of the proxy's CPU per status poll, as much again in the
replica), so one client keeping hundreds of requests in flight makes everyone else's wait behind
its own: 1,500 status polls at 350 at once held another tenant's polls for seconds. Here each bearer credential may have
:data:`PER_CREDENTIAL` requests in flight through one proxy, and the next is answered 429 at once,
before anything is forwarded; what a client gets in bulk is then its share, not everyone's.

The credential is only a key: it is not verified here (the app does that), so a forged token
holds back nothing but itself. Requests without one (health checks, signed download links) pass.
"""

from __future__ import annotations

from collections import Counter

from starlette.types import ASGIApp, Receive, Scope, Send

from serve_app.errors import error_response

PER_CREDENTIAL = 8  # a browser opens 6 connections per host; a flood, hundreds


class FairShare:
    """ASGI middleware for the proxy (one event loop: the counts need no lock)."""

    def __init__(self, app: ASGIApp, per_credential: int = PER_CREDENTIAL) -> None:
        self.app, self.limit = app, per_credential
        self.in_flight: Counter[bytes] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _credential(scope) if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if self.in_flight[key] >= self.limit:
            refused = error_response(
                429, f"at most {self.limit} requests at once per token; retry shortly", {"Retry-After": "1"}
            )
            await refused(scope, receive, send)
            return
        self.in_flight[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[key] -= 1
            if not self.in_flight[key]:
                del self.in_flight[key]


def _credential(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value
    return None
