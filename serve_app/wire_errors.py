"""Encore JSON for what the HTTP front end answers by itself, around the app.

Ray Serve's proxy runs uvicorn, and two kinds of answers never reach the app's own error
handlers: a request uvicorn cannot parse (a garbage request line, an unknown method, a URL over
64 KB, ``Content-Length: abc``) gets a plain-text 400 from uvicorn's protocol class, and the
proxy's own answers (no route yet, a request timeout, a replica that died mid-request, a
websocket handshake) are plain text or empty. Both happen in the proxy's process, where
:mod:`serve_app.front` installs this module before the proxy starts serving.
"""

from __future__ import annotations

import logging

import uvicorn.config
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from serve_app.errors import MESSAGES, error_body, error_response

log = logging.getLogger(__name__)

MALFORMED = "malformed HTTP request"


class JsonParseErrors(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools, or h11 without it) answering unparsable requests in
    JSON. uvicorn picks its protocol class by name from ``uvicorn.config.HTTP_PROTOCOLS`` when
    the server starts, and Serve leaves the choice at ``"auto"``."""

    def send_400_response(self, msg: str) -> None:
        body = error_body(400, MALFORMED).model_dump_json().encode()
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def install() -> None:
    """Make ``"auto"`` mean :class:`JsonParseErrors` in this process (the proxy's)."""
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{JsonParseErrors.__name__}"


class JsonErrorAnswers:
    """ASGI middleware around the proxy: a plain-text error answer becomes Encore JSON (same
    status and headers), a request left unanswered becomes a JSON 500, and a websocket handshake
    (the service has none) a JSON 404. The app's own answers are JSON already and pass as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await _refuse_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = replaced = False

        async def send_json(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                status, headers = message["status"], message.get("headers", [])
                if status >= 400 and not _is_json(headers):
                    replaced = True
                    kept = {
                        k.decode("latin-1"): v.decode("latin-1")
                        for k, v in headers
                        if k.lower() not in (b"content-type", b"content-length")
                    }
                    await _answer(status, kept, send)
                    return
            elif replaced:
                return  # the plain-text body, already replaced
            await send(message)

        try:
            await self.app(scope, receive, send_json)
        except Exception:  # the outermost layer: nothing above it would answer in JSON
            log.exception("proxy failed on %s %s", scope.get("method"), scope.get("path"))
        if not started:
            await _answer(500, {}, send)


def _is_json(headers) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers)


async def _answer(status: int, headers: dict[str, str], send: Send) -> None:
    response = error_response(status, MESSAGES.get(status, "the request failed"), headers)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close"})  # the server then answers 403 by itself
        return
    response = error_response(404, MESSAGES[404])
    await send({"type": "websocket.http.response.start", "status": 404, "headers": response.raw_headers})
    await send({"type": "websocket.http.response.body", "body": response.body})
