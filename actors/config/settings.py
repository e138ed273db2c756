"""Service configuration, read once from ``REPORTS_*`` environment variables (or ``.env``).

Every backend URL is checked against its registry here, so a typo fails at start-up with one
line naming the variable instead of deep inside a job.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actors.job.message import known_zone
from actors.job.options import ReconcileOptions, RunnerOptions
from actors.notify.base import NotifyOptions
from actors.report.options import ReportOptions
from actors.storage.base import LinkOptions

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"
DEV_JWT_SECRET_WARNING = (
    "REPORTS_JWT_SECRET is not set: tokens are checked with the built-in development secret, so anyone can mint "
    "them; never run like this in production"
)

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting is wrong; the message is one line naming the variable."""


def _scheme_check(value: str, registry: dict) -> str:
    """The backend registries (``actors.<kind>.BACKENDS``) are the list of valid schemes."""
    scheme = urlsplit(value).scheme
    if scheme not in registry:
        raise ValueError(f"scheme {scheme!r} is not one of {', '.join(s + '://' for s in registry)}")
    return value


def _naming(variable: str, check, *args) -> None:
    try:
        check(*args)
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from None


class Settings(BaseSettings):
    """What the service needs to know; defaults run everything embedded under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="REPORTS_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./.reports")
    warehouse_url: str = ""
    queue_url: str = ""
    storage_url: str = ""
    notify_url: str = ""
    notify_token: str = ""
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwt_algorithms: list[str] = Field(default_factory=list)
    jwt_leeway_seconds: float = Field(30.0, ge=0, le=300)  # clock skew allowed on exp, nbf and iat
    link_secret: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    student_url_template: str = "https://{subdomain}.lxp.local/course/{course_id}"
    admin_url_template: str = "https://{subdomain}.lxp.local/admin/courses/{course_id}/edit"
    timezone: str = "UTC"
    rate_limit_per_minute: int = Field(60, ge=1)
    read_limit_per_minute: int = Field(600, ge=1)  # status polls per institution, in each HTTP replica
    rate_limit_storage_url: str = ""  # a `limits` storage (redis://…): the counts outlive the limiter
    link_ttl_seconds: int = Field(604800, ge=60)
    render_workers: int = Field(0, ge=0)  # chunks a consumer has rendering at once; 0: the cluster's CPUs + 1
    # Jobs one consumer replica runs at once, sharing its render workers fairly; at most
    # institution_jobs of them for one institution (its further jobs go to the back of the queue).
    consumer_jobs: int = Field(4, ge=1, le=64)
    institution_jobs: int = Field(2, ge=1)
    chunk_rows: int = Field(50_000, ge=1)
    max_delivery_attempts: int = Field(5, ge=1)
    lease_seconds: float = Field(20.0, ge=1)  # a dead consumer's job is taken over one lease after its last heartbeat
    max_in_flight: int = Field(256, ge=1)
    publish_timeout_seconds: float = Field(10.0, gt=0)
    reconcile_seconds: float = Field(30.0, gt=0)
    redrive_after_seconds: float = Field(900.0, gt=0)
    notify_timeout_seconds: float = Field(10.0, gt=0)
    notify_attempts: int = Field(8, ge=1)
    readiness_reuse_seconds: float = Field(10.0, ge=0)  # /readyz answers a check this fresh again
    _embedded_warehouse: bool = PrivateAttr(False)

    @field_validator("warehouse_url")
    @classmethod
    def _warehouse(cls, v: str) -> str:
        from actors.warehouse import BACKENDS

        return v and _scheme_check(v, BACKENDS)

    @field_validator("queue_url")
    @classmethod
    def _queue(cls, v: str) -> str:
        from actors.queue import BACKENDS

        return v and _scheme_check(v, BACKENDS)

    @field_validator("storage_url")
    @classmethod
    def _storage(cls, v: str) -> str:
        from actors.storage import BACKENDS

        return v and _scheme_check(v, BACKENDS)

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _limits_storage(cls, v: str) -> str:
        from limits.storage import SCHEMES

        # Stores that outlive the limiter and that its synchronous strategy can use.
        durable = {scheme: s for scheme, s in SCHEMES.items() if scheme != "memory" and not scheme.startswith("async+")}
        return v and _scheme_check(v, durable)

    @field_validator("notify_url")
    @classmethod
    def _notify(cls, v: str) -> str:
        from actors.notify import BACKENDS

        return v and _scheme_check(v, BACKENDS).rstrip("/")

    @field_validator("public_base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if v and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return known_zone(v)

    @field_validator("student_url_template", "admin_url_template")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            v.format(subdomain="x", course_id=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{subdomain}} and {{course_id}} may be used ({exc})") from None
        return v

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        root = self.data_dir.resolve()
        self._embedded_warehouse = not self.warehouse_url
        self.warehouse_url = self.warehouse_url or f"duckdb://{root}/warehouse.duckdb"
        self.queue_url = self.queue_url or f"local://{root}/queue"
        self.storage_url = self.storage_url or f"file://{root}/files"
        self.notify_url = self.notify_url or f"file://{root}/notifications.jsonl"
        if self.jwt_public_key:
            self.jwt_algorithms = self.jwt_algorithms or ["RS256", "ES256"]
        else:
            self.jwt_algorithms = self.jwt_algorithms or ["HS256"]
            if not self.jwt_secret:  # said by what checks tokens (``serve``, the API replicas)
                self.jwt_secret = DEV_JWT_SECRET
        if "none" in {a.lower() for a in self.jwt_algorithms}:
            raise ValueError("REPORTS_JWT_ALGORITHMS: 'none' is never accepted")
        # Never the public key: anyone could sign download links with it.
        self.link_secret = self.link_secret or self.jwt_secret
        if self.redrive_after_seconds < self.lease_seconds:  # running jobs heartbeat every lease/3
            raise ValueError("REPORTS_REDRIVE_AFTER_SECONDS must be at least REPORTS_LEASE_SECONDS")
        if not self.link_secret and urlsplit(self.storage_url).scheme == "file":
            raise ValueError(
                "REPORTS_LINK_SECRET is required when tokens are checked with a public key "
                "(it signs the download links of file storage)"
            )
        return self

    @model_validator(mode="after")
    def _backend_options(self) -> Settings:
        """Each backend checks its own URL's options (its module is imported only when named)."""
        from actors import queue, storage

        _naming("REPORTS_QUEUE_URL", queue.check_url, self.queue_url)
        _naming("REPORTS_STORAGE_URL", storage.check_url, self.storage_url, self.links)
        return self

    @property
    def dev_jwt_secret(self) -> bool:
        """Tokens are checked with the built-in development secret: anyone can mint them."""
        return self.jwt_secret == DEV_JWT_SECRET and not self.jwt_public_key

    @property
    def embedded_warehouse(self) -> bool:
        """No warehouse was configured: the demo file under ``data_dir`` is used (and created)."""
        return self._embedded_warehouse

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def outbox_path(self) -> Path | None:
        """Where notifications are written when they go to a file (the embedded default)."""
        parts = urlsplit(self.notify_url)
        return Path(parts.path) if parts.scheme == "file" else None

    @property
    def links(self) -> LinkOptions:
        return LinkOptions(
            ttl_seconds=self.link_ttl_seconds, secret=self.link_secret, public_base_url=self.public_base_url
        )

    @property
    def notify(self) -> NotifyOptions:
        return NotifyOptions(
            token=self.notify_token, timeout_seconds=self.notify_timeout_seconds, attempts=self.notify_attempts
        )

    @property
    def runner(self) -> RunnerOptions:
        return RunnerOptions(
            lease_seconds=self.lease_seconds,
            max_delivery_attempts=self.max_delivery_attempts,
            link_ttl_seconds=self.link_ttl_seconds,
            default_timezone=self.timezone,
            report=self.report,
        )

    @property
    def reconcile(self) -> ReconcileOptions:
        return ReconcileOptions(
            pass_seconds=self.reconcile_seconds,
            redrive_after_seconds=self.redrive_after_seconds,
            publish_timeout_seconds=self.publish_timeout_seconds,
        )

    @property
    def report(self) -> ReportOptions:
        return ReportOptions(
            chunk_rows=self.chunk_rows,
            student_url_template=self.student_url_template,
            admin_url_template=self.admin_url_template,
        )


def load_settings(**overrides) -> Settings:
    """Parse the environment once; turn pydantic's report into one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        # Model-level errors name their variables themselves.
        raise ConfigError(f"REPORTS_{field.upper()}: {msg}" if field else msg) from None
