"""The reference for ``backpressure_bench.py``: the report-request path of the Serve app as one
plain FastAPI app under uvicorn (one process, no Ray).

Same work per request as ``serve_app.app.ReportsAPI.request_catalog``: the same HTTPBearer
dependency and Encore error handlers, :class:`serve_app.auth.Authenticator`, ``params.parse``,
a 60/min moving-window limit per institution (the ``limits`` library, in-process instead of in
a Ray actor), :func:`actors.job.submit.submit` (a ledger write with :class:`actors.job.ledger.Ledger`
over :class:`actors.storage.local.LocalStorage`, then a publish to
:class:`actors.queue.local.LocalQueue`) in a worker thread as the Serve app does, and the same in-flight
counting / no-store middleware. The job status and ``/healthz`` routes are copied too, for the bench's
responsiveness probe.
Nothing consumes the queue: this app is only the yardstick for enqueue latency.

    BP_DATA_DIR=/tmp/x BP_JWT_SECRET=... uvicorn bench.plain_fastapi_app:app --port 8123
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from actors.config.settings import load_settings
from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, new_job_id, utcnow
from actors.job.submit import submit
from actors.queue.local import LocalQueue
from actors.storage.local import LocalStorage
from serve_app import errors, params
from serve_app.auth import Authenticator
from serve_app.errors import ApiError, error_response
from serve_app.ratelimit import retry_after
from serve_app.shedding import InFlight

settings = load_settings(
    data_dir=os.environ["BP_DATA_DIR"],
    jwt_secret=os.environ["BP_JWT_SECRET"],
    rate_limit_per_minute=int(os.environ.get("BP_RATE_LIMIT", "60")),
)
authenticate = Authenticator(settings.jwt_secret, settings.jwt_algorithms, settings.jwt_leeway_seconds)
queue = LocalQueue(settings.queue_url)
ledger = Ledger(LocalStorage(settings.storage_url, settings.links))
item = RateLimitItemPerMinute(settings.rate_limit_per_minute)
limiter = MovingWindowRateLimiter(MemoryStorage())
in_flight = InFlight(limit=settings.max_in_flight)
bearer = HTTPBearer(auto_error=False)
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

app = FastAPI(title="catalog-report (plain reference)")
errors.install(app)


@app.middleware("http")
async def shed_load_and_mark_no_store(request: Request, call_next):
    if not in_flight.try_enter():
        return error_response(503, "the service is busy; retry shortly", {"Retry-After": "1"})
    try:
        response = await call_next(request)
    finally:
        in_flight.leave()
    if request.url.path.startswith("/institution/reports/") and "cache-control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


@app.get("/institution/reports/catalog")
async def request_catalog(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    start_date: Annotated[str | None, Query()] = None,
    end_date: Annotated[str | None, Query()] = None,
    school_ids: Annotated[str | None, Query()] = None,
):
    who = authenticate(f"Bearer {credentials.credentials}" if credentials else None)
    req = params.parse(start_date, end_date, school_ids)
    key = str(who.institution_id)
    if not limiter.hit(item, key):
        wait = max(1.0, limiter.get_window_stats(item, key).reset_time - time.time())
        raise ApiError(429, "rate limit exceeded", {"Retry-After": retry_after(wait)})
    job = CatalogJob(
        job_id=new_job_id(),
        institution_id=who.institution_id,
        user_id=who.user_id,
        subdomain=who.subdomain,
        start_date=req.start_date,
        end_date=req.end_date,
        school_ids=req.school_ids,
        timezone=settings.timezone,
        requested_at=utcnow(),
    )
    await asyncio.to_thread(submit, ledger, queue, job)
    return JSONResponse({"results": {"id": job.job_id}}, headers={"Cache-Control": "no-store"})


@app.get("/institution/reports/jobs/{job_id}")
async def job_status(job_id: str, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]):
    who = authenticate(f"Bearer {credentials.credentials}" if credentials else None)
    found = await asyncio.to_thread(ledger.get, job_id) if _JOB_ID.fullmatch(job_id) else None
    if found is None or (found[0].institution_id, found[0].user_id) != (who.institution_id, who.user_id):
        raise ApiError(404, "no such job")
    return {"results": found[0].public()}


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
