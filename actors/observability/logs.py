"""The service's loggers: one per module, named by the module (``logging.getLogger(__name__)``),
so a line says where it came from. Job-scoped lines carry the job id as a field, and inside Serve
replicas every line goes through Serve's handlers (JSON lines in the replica's log file)."""

from __future__ import annotations

import logging

# The top-level packages whose loggers are the service's own.
PACKAGES = ("actors", "serve_app")


def job_log(log: logging.Logger, job_id: str) -> logging.LoggerAdapter:
    """``log`` with ``job_id`` on every line (a JSON field under Serve's JSON logging)."""
    return logging.LoggerAdapter(log, {"job_id": job_id})


def use_serve_log_files() -> None:
    """Send the service's log lines through the ``ray.serve`` logger's handlers, which Serve
    configures per replica (files, encoding); call once in each deployment's constructor."""
    serve = logging.getLogger("ray.serve")
    for package in PACKAGES:
        ours = logging.getLogger(package)
        for handler in serve.handlers:
            if handler not in ours.handlers:
                ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False
