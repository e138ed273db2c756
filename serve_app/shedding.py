"""Load shedding per replica: past ``limit`` requests in flight, answer a JSON 503 at once.

Serve's own backpressure (``max_queued_requests``) answers in plain text, which the API promises
never to do, so the HTTP deployment leaves Serve's queue unbounded and sheds here instead. The
state lives in this module (not in ``app.py``) because Serve ships the ingress class by value:
a global assigned from its methods would land in a copy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InFlight:
    limit: int = 256
    count: int = 0

    def try_enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1


state = InFlight()  # one per replica process
