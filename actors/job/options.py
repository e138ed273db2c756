"""What the consumer and the reconciler need from the configuration, and nothing more."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from actors.report.options import ReportOptions


class RunnerOptions(BaseModel):
    """One consumer job slot's rules."""

    model_config = ConfigDict(frozen=True)

    lease_seconds: float = 20.0  # a dead consumer's job is taken over one lease after its last heartbeat
    max_delivery_attempts: int = 5
    link_ttl_seconds: int = 604800
    default_timezone: str = "UTC"  # for version-1 messages, which carry none
    report: ReportOptions = ReportOptions()


class ReconcileOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    pass_seconds: float = 30.0  # between two passes
    redrive_after_seconds: float = 900.0  # a job silent this long is published again
    publish_timeout_seconds: float = 10.0
