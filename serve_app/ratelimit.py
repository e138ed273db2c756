"""The per-institution limit on report requests (60 in any rolling minute), shared by every
replica and kept across the limiter's restarts.

One deployment-scoped Ray actor holds the moving windows (the ``limits`` library): Serve creates
it with the deployment, health-checks it and starts a new one when it dies, and all replicas of
the HTTP deployment talk to it. What it counted must outlive it, or a kill -9 would give every
institution a fresh minute:

- with ``REPORTS_RATE_LIMIT_STORAGE_URL`` (a ``limits`` storage: ``redis://``, ``memcached://``,
  …) the windows live in that store, so a new actor carries on exactly where the old one stopped;
- without it (the embedded default) a new actor rebuilds the windows from the job ledger: each
  job created in the last minute counts again for its institution, as if requested when the new
  actor started. A refusal may then last longer than the minute strictly needs (at most a
  minute longer), never shorter.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from datetime import timedelta

import ray
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from ray import serve

from actors.config.settings import load_settings
from actors.job.ledger import Ledger
from actors.job.message import utcnow
from actors.observability import metrics
from actors.storage import open_storage
from serve_app.errors import ApiError

ACTOR_NAME = "rate-limiter"
NAMESPACE = "catalog-report.requests"  # a shared store may hold other applications' windows


@ray.remote(num_cpus=0)
class RateLimiter:
    def __init__(self, settings_values: dict):
        settings = load_settings(**settings_values)
        self.item = RateLimitItemPerMinute(settings.rate_limit_per_minute, namespace=NAMESPACE)
        if settings.rate_limit_storage_url:
            self.limiter = MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage_url))
        else:
            self.limiter = MovingWindowRateLimiter(MemoryStorage())
            self._count_again(Ledger(open_storage(settings.storage_url, settings.links)))

    def _count_again(self, ledger: Ledger) -> None:
        """The jobs of the last minute, from the ledger: what the previous actor had counted."""
        since = utcnow() - timedelta(seconds=self.item.get_expiry())
        recent = Counter(str(job.institution_id) for job in ledger.created_since(since))
        for institution, jobs in recent.items():
            self.limiter.hit(self.item, institution, cost=min(jobs, self.item.amount))

    def hit(self, key: str) -> float:
        """0 when allowed; otherwise seconds until a slot frees up (for Retry-After)."""
        if self.limiter.hit(self.item, key):
            return 0.0
        reset = self.limiter.get_window_stats(self.item, key).reset_time
        return max(1.0, reset - time.time())


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class RateLimitClient:
    """What an HTTP replica calls: the deployment's limiter actor, looked up again when Serve has
    replaced it (or its store is down, then the request gets a 503 to retry)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._limiter = None

    async def check(self, institution_id: int) -> None:
        """Count one report request; raise a 429 with Retry-After when over the limit."""
        for attempt in range(2):
            try:
                if self._limiter is None:
                    self._limiter = serve.get_deployment_actor(ACTOR_NAME)
                wait = await self._limiter.hit.remote(str(institution_id))
                break
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError, ValueError):
                self._limiter = None
                if attempt:
                    raise ApiError(503, "rate limiter unavailable; retry shortly", {"Retry-After": "1"}) from None
                await asyncio.sleep(0.5)
        if wait:
            metrics.rate_limit_refusals().inc()
            raise ApiError(
                429,
                f"rate limit exceeded: at most {self.per_minute} report requests per minute per institution",
                {"Retry-After": retry_after(wait)},
            )
