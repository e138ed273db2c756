"""How many consumer replicas the backlog needs: a Ray Serve custom autoscaling policy.

Serve's own policy scales on requests in flight, and a consumer has none: its work comes from
the queue. Each ``JobConsumer`` replica reports (``record_autoscaling_stats``) what the ledger
says, which holds for every queue backend alike (Pub/Sub's backlog is only in Cloud Monitoring,
which its emulator lacks): the jobs accepted and not yet notified, the age of the oldest one
still waiting to start, and its own running jobs and slots. The policy asks for enough
replicas to give every pending job a slot, and one more while a job has waited longer than
``age_target_s``. Serve applies the deployment's ``upscale_delay_s``, ``downscale_delay_s`` and
``min_replicas``/``max_replicas`` to that answer; a replica being stopped finishes its running
jobs first (the consumer's drain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from actors.job.ledger import Ledger
from actors.job.message import utcnow
from actors.job.state import Status

PENDING_SCAN = 1000  # index entries looked at per report: replicas enough for this many jobs
AGE_SCAN = 20  # the oldest pending jobs whose records are read for the oldest one still queued


@dataclass(frozen=True)
class Backlog:
    pending: int  # accepted and not yet notified, running ones included
    oldest_queued_s: float  # how long the oldest job not yet started has waited (0: none waits)

    @classmethod
    def read(cls, ledger: Ledger) -> Backlog:
        entries = ledger.pending(PENDING_SCAN)
        now, oldest = utcnow(), 0.0
        for job_id, _ in entries[:AGE_SCAN]:  # ULIDs: oldest first
            found = ledger.get(job_id)
            if found and found[0].status is Status.queued:
                oldest = (now - found[0].created_at).total_seconds()
                break
        return cls(len(entries), oldest)


class BacklogPolicy:
    """Serve calls it with an ``AutoscalingContext``; Serve itself then applies the deployment's
    ``upscale_delay_s``/``downscale_delay_s`` and replica bounds to the answer."""

    def __init__(self, age_target_s: float = 30.0):
        self.age_target_s = age_target_s

    def __call__(self, ctx) -> tuple[int, dict]:
        current, metrics = ctx.current_num_replicas, ctx.aggregated_metrics or {}
        # Every replica reads the same ledger: the freshest (largest) report is the backlog.
        pending = max(metrics.get("pending", {}).values(), default=None)
        if pending is None:  # no replica has reported yet
            return current, ctx.policy_state
        slots = max(metrics.get("slots", {}).values(), default=1) or 1
        wanted = math.ceil(pending / slots)
        if max(metrics.get("oldest_queued_s", {}).values(), default=0) > self.age_target_s:
            wanted = max(wanted, current + 1)
        return wanted, ctx.policy_state
