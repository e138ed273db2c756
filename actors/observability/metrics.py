"""The service's Ray metrics (``ray.util.metrics``): exported by each node's metrics agent in
Prometheus format, where the Ray dashboard and Prometheus scrape them (names get a ``ray_``
prefix). Created on first use, inside the Ray process that records them."""

from __future__ import annotations

from functools import cache

from ray.util.metrics import Counter, Gauge, Histogram

_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800]


@cache
def jobs() -> Counter:
    return Counter("catalog_jobs", "Report jobs by final status.", tag_keys=("status",))


@cache
def job_seconds() -> Histogram:
    return Histogram("catalog_job_seconds", "Request accepted to job finished, seconds.", boundaries=_SECONDS)


@cache
def phase_seconds() -> Histogram:
    return Histogram("catalog_job_phase_seconds", "Seconds per job phase.", boundaries=_SECONDS, tag_keys=("phase",))


@cache
def rows_rendered() -> Counter:
    return Counter("catalog_rows_rendered", "Report rows written to spreadsheets.")


@cache
def queue_lag_seconds() -> Histogram:
    return Histogram(
        "catalog_queue_lag_seconds", "Request accepted to a consumer starting the job, seconds.", boundaries=_SECONDS
    )


@cache
def rate_limit_refusals() -> Counter:
    return Counter("catalog_rate_limit_refusals", "Report requests refused by the per-institution limit.")


@cache
def reconcile_passes() -> Counter:
    return Counter("catalog_reconcile_passes", "Reconciler passes over the unfinished jobs (one holder at a time).")


@cache
def jobs_redriven() -> Counter:
    return Counter(
        "catalog_jobs_redriven", "Jobs the reconciler published again, by their status then.", tag_keys=("status",)
    )


@cache
def jobs_pending() -> Gauge:
    return Gauge("catalog_jobs_pending", "Jobs accepted and not yet notified, at the last reconciler pass.")


@cache
def deferred_jobs() -> Counter:
    return Counter(
        "catalog_jobs_deferred",
        "Jobs sent to the back of the queue because their institution had its share of a consumer's job slots.",
    )
