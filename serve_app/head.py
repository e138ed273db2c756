"""``HEAD`` on the read-only routes: load balancers probe health with it and link checkers try
download links with it. FastAPI routes declared ``GET`` answer ``HEAD`` with 405; here such a
request is run as the ``GET`` it asks about and answered with that response's status and headers
(``Content-Length`` included), without its body. Routes that act (requesting a report) are not
listed, so ``HEAD`` never starts a job."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Matched at the end of the path, so the app answers the same under any route prefix.
READ_ONLY = re.compile(r"(?:/healthz|/readyz|/institution/reports/jobs/[^/]+|/institution/reports/files/.+)$")


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not READ_ONLY.search(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
