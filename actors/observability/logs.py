"""The service's loggers: job-scoped lines carry the job id as a field, and inside Serve
replicas they go through Serve's handlers (JSON lines in the replica's log file)."""

from __future__ import annotations

import logging

ROOT = "catalog_report"


def job_log(job_id: str, name: str = "consumer") -> logging.LoggerAdapter:
    """A logger whose lines carry ``job_id`` (a JSON field under Serve's JSON logging)."""
    return logging.LoggerAdapter(logging.getLogger(f"{ROOT}.{name}"), {"job_id": job_id})


def use_serve_log_files() -> None:
    """Send the service's log lines through the ``ray.serve`` logger's handlers, which Serve
    configures per replica (files, encoding); call once in each deployment's constructor."""
    ours, serve = logging.getLogger(ROOT), logging.getLogger("ray.serve")
    for handler in serve.handlers:
        if handler not in ours.handlers:
            ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False
