"""The Serve application: a FastAPI ingress deployment plus the job consumer.

``build_app(args)`` is the one entry point, usable from Python, ``serve run
serve_app.app:build_app`` and a Serve config file; ``args`` override ``REPORTS_*`` settings.
"""

import asyncio
import logging
import re
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve.config import DeploymentActorConfig

from actors.config.settings import DEV_JWT_SECRET_WARNING, Settings, load_settings
from actors.job.cancel import withdraw
from actors.job.deployment import JobConsumer
from actors.job.ledger import Ledger
from actors.job.message import JOB_ID_PATTERN, CatalogJob, iso, new_job_id, utcnow
from actors.job.requests import KeyReused, Requests
from actors.job.state import JobBody, JobState, Status
from actors.job.submit import Unavailable, submit
from actors.observability.logs import use_serve_log_files
from actors.queue import QueueUnavailable, open_queue
from actors.storage import LinkUnavailable, PreconditionFailed, open_storage
from serve_app import downloads, errors, params, shedding
from serve_app.auth import Authenticator, Principal
from serve_app.deps import CurrentPrincipal
from serve_app.errors import ERROR_RESPONSES, ApiError, ErrorBody, error_response
from serve_app.head import HeadAsGet
from serve_app.params import CatalogRequestBody
from serve_app.ratelimit import ACTOR_NAME, RateLimitClient, RateLimiter
from serve_app.readlimit import ReadLimit

log = logging.getLogger(__name__)

_JOB_ID = re.compile(JOB_ID_PATTERN)
IdempotencyKey = Annotated[
    str | None, Header(description="1-255 printable ASCII: the same key within 24 hours answers with the first job")
]
RETRY_AFTER_SECONDS = 10  # a backend outage: long enough not to hammer it, short enough for a person
HEALTH_TIMEOUT_SECONDS = 3.0
FRESH_LINK_SECONDS = 900  # a link handed out by GET …/file: 15 minutes (SPEC §2a)
DOWNLOAD_COUNT_TRIES = 5
READY_TIMEOUT_SECONDS = 8.0  # the consumer's own checks give up after 5 s

api = FastAPI(
    title="catalog-report",
    version="1.0.0",
    description="Course Catalog report: request a report, follow its job, download the file.",
    dependencies=[Depends(params.single_valued)],
)
errors.install(api)
api.add_middleware(HeadAsGet)


@api.middleware("http")
async def shed_load_and_mark_no_store(request: Request, call_next):
    """Shed load with a JSON 503 past ``REPORTS_MAX_IN_FLIGHT`` requests in this replica, and
    keep API answers out of caches. Health checks are never shed: tenants' traffic must not make
    a replica look dead."""
    if request.scope["path"].removeprefix(request.scope.get("root_path", "")) in ("/healthz", "/readyz"):
        return await call_next(request)
    if not shedding.state.try_enter():
        return error_response(503, "the service is busy; retry shortly", {"Retry-After": "1"})
    try:
        response = await call_next(request)
    finally:
        shedding.state.leave()
    if request.url.path.startswith("/institution/reports/") and "cache-control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


class JobId(BaseModel):
    id: str


class JobAccepted(BaseModel):
    results: JobId


class JobStatus(BaseModel):
    results: JobBody


class JobList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    results: list[JobBody]
    next_cursor: str | None = Field(alias="nextCursor")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    backends: dict[str, str]  # name → "ok"


@serve.deployment(
    name="ReportsAPI",
    ray_actor_options={"num_cpus": 0},
    max_ongoing_requests=10_000,
    logging_config={"encoding": "JSON"},
)
@serve.ingress(api)
class ReportsAPI:
    """Auth → validation → rate limit → publish; status; signed downloads. Thin by design: the
    work happens in :mod:`actors`."""

    def __init__(self, settings_values: dict, consumer=None):
        use_serve_log_files()
        self.settings: Settings = load_settings(**settings_values)
        shedding.state.limit = self.settings.max_in_flight
        if self.settings.dev_jwt_secret:
            log.warning(DEV_JWT_SECRET_WARNING)
        api.state.authenticator = Authenticator(
            self.settings.jwt_public_key or self.settings.jwt_secret,
            self.settings.jwt_algorithms,
            self.settings.jwt_leeway_seconds,
        )
        self.queue = open_queue(self.settings.queue_url)
        self.storage = open_storage(self.settings.storage_url, self.settings.links)
        self.ledger = Ledger(self.storage)
        self.requests = Requests(self.ledger)
        self.limit = RateLimitClient(self.settings.rate_limit_per_minute)
        self.reads = ReadLimit(self.settings.read_limit_per_minute)
        self.consumer = consumer  # bound so Serve deploys it with the API

    @api.get(
        "/institution/reports/catalog",
        response_model=JobAccepted,
        responses=ERROR_RESPONSES,
        summary="Request the Course Catalog report",
    )
    async def request_catalog(
        self,
        who: CurrentPrincipal,
        start_date: Annotated[
            str | None,
            Query(
                description="Required. First day, YYYY-MM-DD.",
                examples=["2026-01-01"],
                json_schema_extra={"format": "date"},
            ),
        ] = None,
        end_date: Annotated[
            str | None,
            Query(
                description="Required. Last day (included), YYYY-MM-DD.",
                examples=["2026-06-02"],
                json_schema_extra={"format": "date"},
            ),
        ] = None,
        school_ids: Annotated[str | None, Query(description="Comma-separated school ids.", examples=["10,20"])] = None,
        format: Annotated[str | None, Query(description="xlsx (default), csv or parquet.")] = None,
        locale: Annotated[str | None, Query(description="pt-BR (default), en or es.")] = None,
        timezone: Annotated[str | None, Query(description="IANA zone (default: the service's).")] = None,
        idempotency_key: IdempotencyKey = None,
    ):
        req = params.parse(start_date, end_date, school_ids)
        options = params.parse_options(format, locale, timezone, self.settings.timezone)
        job_id = await self._accept(who, req, options, params.idempotency_key(idempotency_key))
        return JSONResponse({"results": {"id": job_id}}, headers={"Cache-Control": "no-store"})

    @api.post(
        "/institution/reports/catalog",
        response_model=JobAccepted,
        responses=ERROR_RESPONSES | {409: {"model": ErrorBody, "description": "already_exists"}},
        summary="Request the Course Catalog report (JSON body)",
    )
    async def create_catalog(
        self, who: CurrentPrincipal, body: CatalogRequestBody, idempotency_key: IdempotencyKey = None
    ):
        req = body.request()
        options = params.parse_options(body.format, body.locale, body.timezone, self.settings.timezone)
        job_id = await self._accept(who, req, options, params.idempotency_key(idempotency_key))
        return JSONResponse(
            {"results": {"id": job_id}},
            headers={"Cache-Control": "no-store", "Location": f"/institution/reports/jobs/{job_id}"},
        )

    async def _accept(self, who: Principal, req: params.ReportRequest, options: params.Options, key: str | None) -> str:
        """The id of the job that answers this request: an earlier one (a replayed key, or the
        same request still queued or running: neither is counted by the rate limit), or a new
        one, counted, recorded and published."""
        job = CatalogJob(
            job_id=new_job_id(),
            institution_id=who.institution_id,
            user_id=who.user_id,
            subdomain=who.subdomain,
            start_date=req.start_date,
            end_date=req.end_date,
            school_ids=req.school_ids,
            format=options.format,
            locale=options.locale,
            timezone=options.timezone,
            requested_at=utcnow(),
        )
        try:
            if earlier := await self._ledger_call("request", self.requests.earlier, job, key):
                return earlier
            await self.limit.check(who.institution_id)
            claim = await self._ledger_call("request", self.requests.claim, job, key)
        except KeyReused:
            raise ApiError(409, "this Idempotency-Key was used for a request with other parameters") from None
        if not claim.new:
            return claim.job_id
        try:
            await asyncio.to_thread(submit, self.ledger, self.queue, job, self.settings.publish_timeout_seconds)
        except Unavailable as exc:
            log.warning("job %s not accepted: %s (%r)", job.job_id, exc, exc.__cause__)
            await asyncio.to_thread(self._release, job, key)
            raise ApiError(503, f"{exc}; retry shortly", {"Retry-After": str(RETRY_AFTER_SECONDS)}) from exc
        return job.job_id

    def _release(self, job: CatalogJob, key: str | None) -> None:
        try:
            self.requests.release(job, key)
        except Exception:  # the storage is down too: the key answers with a job that has no record
            log.exception("job %s: its idempotency records could not be released", job.job_id)

    @api.get(
        "/institution/reports/jobs/{job_id}",
        response_model=JobStatus,
        responses=ERROR_RESPONSES,
        summary="Follow a report job",
    )
    async def job_status(self, job_id: str, who: CurrentPrincipal) -> JobStatus:
        self.reads.check(who.institution_id)
        state, _ = await self._own_job(job_id, who)
        return JobStatus(results=state.public())

    @api.get(
        "/institution/reports/jobs",
        response_model=JobList,
        responses=ERROR_RESPONSES,
        summary="The caller's report jobs, newest first",
    )
    async def list_jobs(
        self,
        who: CurrentPrincipal,
        status: Annotated[str | None, Query(description="Only jobs in this status.", examples=["done"])] = None,
        limit: Annotated[str | None, Query(description="1 to 100 jobs per page (default 20).", examples=["20"])] = None,
        cursor: Annotated[str | None, Query(description="nextCursor of the previous page.")] = None,
    ) -> JobList:
        self.reads.check(who.institution_id)
        listing = params.parse_listing(status, limit, cursor)
        states, after = await self._ledger_call(
            "list", self.ledger.jobs_of, who.institution_id, who.user_id, listing.limit, listing.after, listing.status
        )
        return JobList(
            results=[state.public() for state in states], next_cursor=params.cursor_for(after) if after else None
        )

    @api.get(
        "/institution/reports/jobs/{job_id}/file",
        status_code=302,
        response_class=RedirectResponse,
        responses={302: {"description": "to a link signed now, valid 15 minutes"}, **ERROR_RESPONSES},
        summary="Download a finished report: a redirect to a freshly signed link",
    )
    async def job_file(self, job_id: str, who: CurrentPrincipal):
        self.reads.check(who.institution_id)
        state, generation = await self._own_job(job_id, who)
        if state.status is not Status.done or not state.object_key:
            raise ApiError(
                400, f"the job is {state.status.value}: it has no file to download", code="failed_precondition"
            )
        try:
            url, _ = await asyncio.to_thread(self.storage.link, state.object_key, FRESH_LINK_SECONDS)
        except LinkUnavailable as exc:
            raise ApiError(503, str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)}) from exc
        await self._ledger_call("download count", self._count_download, state, generation)
        log.info(
            "download",
            extra={
                "job": state.id,  # not job_id: Serve leaves that field out of a request's log line
                "user_id": who.user_id,
                "institution_id": who.institution_id,
                "at": iso(utcnow()),
            },
        )
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    @api.delete(
        "/institution/reports/jobs/{job_id}",
        response_model=JobStatus,
        responses=ERROR_RESPONSES,
        summary="Cancel a queued or running report, or delete a finished one's file",
    )
    async def withdraw_job(self, job_id: str, who: CurrentPrincipal) -> JobStatus:
        """A running job stops within seconds (no file, no notification); a finished job's file
        is removed and every link to it stops working; repeating it changes nothing."""
        state, generation = await self._own_job(job_id, who)
        state = await self._ledger_call("withdraw", withdraw, self.ledger, state, generation)
        log.info("withdrawn", extra={"job": state.id, "user_id": who.user_id, "status": state.status.value})
        return JobStatus(results=state.public())

    def _count_download(self, state: JobState, generation: str) -> None:
        """One more download in the record, compare-and-swap (the consumer may still be writing
        its notification flag)."""
        for _ in range(DOWNLOAD_COUNT_TRIES):
            try:
                self.ledger.put(state.downloaded(), generation)
                return
            except PreconditionFailed:
                state, generation = self.ledger.get(state.id)
        raise RuntimeError(f"job {state.id}: the download could not be counted")

    async def _own_job(self, job_id: str, who: Principal) -> tuple[JobState, str]:
        """The caller's job and its generation; 404 for a job that is not theirs, as for none."""
        found = await self._ledger_call("status", self.ledger.get, job_id) if _JOB_ID.fullmatch(job_id) else None
        if found is None or (found[0].institution_id, found[0].user_id) != (who.institution_id, who.user_id):
            raise ApiError(404, "no such job")
        return found

    async def _ledger_call(self, what: str, call, *args):
        """A ledger read in a thread; its storage not answering in time is a 503 to retry."""
        try:
            return await asyncio.to_thread(call, *args)
        except KeyReused:
            raise
        except Exception as exc:
            log.warning("%s unavailable: the ledger did not answer (%r)", what, exc)
            raise ApiError(
                503, "the job ledger did not answer; retry shortly", {"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from exc

    @api.get(
        "/institution/reports/files/{key:path}",
        responses=ERROR_RESPONSES,
        summary="Download a report (embedded storage, signed link)",
    )
    async def download(self, key: str, expires: str | None = None, signature: str | None = None):
        if not self.storage.serves_downloads:
            raise ApiError(404, "downloads are served by the configured object storage")
        return downloads.serve_file(self.storage, key, expires, signature)

    @api.get(
        "/healthz",
        response_model=Health,
        responses={503: ERROR_RESPONSES[503]},
        summary="Whether requests can be accepted and consumed (the queue answers)",
    )
    async def healthz(self):
        try:
            await asyncio.to_thread(self.queue.check, HEALTH_TIMEOUT_SECONDS)
        except QueueUnavailable as exc:
            raise ApiError(503, f"queue: {exc}", {"Retry-After": str(RETRY_AFTER_SECONDS)}) from exc
        return {"status": "ok"}

    @api.get(
        "/readyz",
        response_model=Readiness,
        responses={503: ERROR_RESPONSES[503]},
        summary="Whether reports can be produced: the consumer and every backend it uses answer",
    )
    async def readyz(self):
        """Names what is unavailable (the consumer's log says why): jobs are still accepted
        meanwhile, and fail with a notification if their backend stays down."""
        try:
            report = await asyncio.wait_for(self.consumer.backends.remote(), READY_TIMEOUT_SECONDS)
        except Exception as exc:  # no replica answers: not started, or stuck
            log.warning("readiness: the consumer did not answer: %r", exc)
            report = {"consumer": "did not answer"}
        down = sorted(name for name, why in report.items() if why)
        if down:
            raise ApiError(503, f"unavailable: {', '.join(down)}", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        return {"status": "ok", "backends": {name: "ok" for name in sorted(report)}}


BACKLOG_POLICY = "actors.job.autoscaling:BacklogPolicy"


def build_app(args: dict | None = None):
    """The Serve application; ``args`` override settings (as a Serve config's ``args:``),
    ``api_replicas`` sets how many HTTP replicas run, and ``consumer_autoscaling`` (Serve's
    ``autoscaling_config``: ``min_replicas``, ``max_replicas``, ``upscale_delay_s`` …, and the
    backlog policy's ``age_target_s``) lets the consumer replicas follow the backlog."""
    args = dict(args or {})
    replicas = int(args.pop("api_replicas", 1))
    scaling = args.pop("consumer_autoscaling", None)
    settings = load_settings(**args)
    values = settings.model_dump(mode="json")
    limiter = DeploymentActorConfig(
        name=ACTOR_NAME, actor_class=RateLimiter, init_kwargs={"settings_values": values}, actor_options={"num_cpus": 0}
    )
    consumer = JobConsumer
    if scaling:
        consumer = consumer.options(autoscaling_config=consumer_autoscaling(scaling))
    consumer = consumer.bind(values)
    return ReportsAPI.options(num_replicas=replicas, deployment_actors=[limiter]).bind(values, consumer)


def consumer_autoscaling(given: dict) -> dict:
    """Serve's autoscaling_config for the consumer, with the backlog policy and its options."""
    config = dict(given)
    options = {key: config.pop(key) for key in ("age_target_s",) if key in config}
    return {**config, "policy": {"policy_function": BACKLOG_POLICY, "policy_kwargs": options}}
