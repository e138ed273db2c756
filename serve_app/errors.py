"""Encore-shaped error bodies — ``{"code", "message", "details": null}`` — for every failure,
including the ones FastAPI and Starlette would otherwise answer in their own formats."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "unimplemented",
    408: "deadline_exceeded",
    409: "already_exists",
    413: "resource_exhausted",
    429: "resource_exhausted",
    500: "internal",
    501: "unimplemented",
    503: "unavailable",
}


# The service's words for failures that carry no message of their own: the app's handlers and
# the proxy's rewritten answers (serve_app/wire_errors.py) say the same thing for the same status.
MESSAGES = {
    404: "no such route",
    405: "method not allowed",
    408: "the request took too long",
    429: "the service is busy; retry shortly",
    500: "an internal error occurred",
    503: "the service is unavailable; retry shortly",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: None = None


class ApiError(Exception):
    """An answer with an Encore body; ``code`` when the status's usual one does not fit (a 400
    ``failed_precondition``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.headers, self.code = status, message, headers or {}, code


def error_body(status: int, message: str, code: str | None = None) -> ErrorBody:
    code = code or CODES.get(status, "internal" if status >= 500 else "invalid_argument")
    return ErrorBody(code=code, message=message)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(
        error_body(status, message, code).model_dump(),
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _validation_message(exc: RequestValidationError) -> str:
    err = exc.errors()[0]
    if tuple(err.get("loc", ())) == ("body",):  # not JSON, or JSON that is not an object
        return "the body must be a JSON object" if err.get("type") != "missing" else "a JSON body is required"
    if err.get("type") == "json_invalid":
        return "the body is not valid JSON"
    loc = [str(part) for part in err.get("loc", ())]
    if loc and loc[0] in ("body", "query", "header", "path"):
        loc = loc[1:]  # where it came from is clear to the caller; the field is not
    name = ".".join(loc) or "request"  # a list item: schoolIds.0
    if err.get("type") == "missing":
        return f"{name} is required"
    return f"{name}: {err.get('msg', 'invalid value')}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        return error_response(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        message = MESSAGES[exc.status_code] if exc.status_code in (404, 405) else str(exc.detail)
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, MESSAGES[500])


# For the OpenAPI document: every route may answer these.
ERROR_RESPONSES = {
    status: {"model": ErrorBody, "description": code}
    for status, code in CODES.items()
    if status in (400, 401, 403, 404, 429, 500, 503)
}
