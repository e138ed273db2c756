"""Status polls per institution: a budget of their own, above report requests', so a tenant
polling in a loop is told to slow down (429 with ``Retry-After``) instead of taking the
replicas' time from everyone else.

Counted in each HTTP replica's memory (``limits``' sliding window counter): a poll costs no call
to another process, which is the point, and with N replicas an institution may get up to N times
the budget. It is a brake, not a quota: nothing about it needs to survive a restart.
"""

from __future__ import annotations

import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from serve_app.errors import ApiError
from serve_app.ratelimit import retry_after


class ReadLimit:
    def __init__(self, per_minute: int):
        self.item = RateLimitItemPerMinute(per_minute, namespace="catalog-report.reads")
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def check(self, institution_id: int) -> None:
        key = str(institution_id)
        if not self.limiter.hit(self.item, key):
            reset = self.limiter.get_window_stats(self.item, key).reset_time
            raise ApiError(
                429,
                f"too many status requests: at most {self.item.amount} per minute per institution",
                {"Retry-After": retry_after(reset - time.time())},
            )
