"""The per-institution limit (60 requests in any rolling minute), shared by every replica.

One deployment-scoped Ray actor holds the counters (the ``limits`` library's moving window):
Serve creates it with the deployment, health-checks and recreates it, and all replicas of the
HTTP deployment talk to the same one.
"""

from __future__ import annotations

import math
import time

import ray
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

ACTOR_NAME = "rate-limiter"


@ray.remote(num_cpus=0)
class RateLimiter:
    def __init__(self, per_minute: int):
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.refused = 0

    def hit(self, key: str) -> float:
        """0 when allowed; otherwise seconds until a slot frees up (for Retry-After)."""
        if self.limiter.hit(self.item, key):
            return 0.0
        self.refused += 1
        reset = self.limiter.get_window_stats(self.item, key).reset_time
        return max(1.0, reset - time.time())

    def refusals(self) -> int:
        return self.refused


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
