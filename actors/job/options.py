"""What the consumer and the reconciler need from the configuration, and nothing more. No
defaults here: :class:`~actors.config.settings.Settings` has them, and builds these."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from actors.report.options import ReportOptions


class RunnerOptions(BaseModel):
    """One consumer job slot's rules."""

    model_config = ConfigDict(frozen=True)

    lease_seconds: float  # a dead consumer's job is taken over one lease after its last heartbeat
    max_delivery_attempts: int
    link_ttl_seconds: int
    default_timezone: str  # for version-1 messages, which carry none
    report: ReportOptions


class ReconcileOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    pass_seconds: float  # between two passes
    redrive_after_seconds: float  # a job silent this long is published again
    publish_timeout_seconds: float
