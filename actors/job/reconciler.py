"""The reconciler: the ledger is the truth, and a queue can lose a message (an emulator restart,
a deleted subscription, a publish that failed after the record was written). A periodic pass
publishes again every job the ledger shows unfinished or un-notified that has given no sign of
life for ``REPORTS_REDRIVE_AFTER_SECONDS``; the consumer's claim protocol and the notification's
``Idempotency-Key`` keep that exactly-once, so a spare message is only a duplicate delivery.

One pass at a time across the cluster: every consumer replica runs the loop, and only the
holder of a lease kept in the ledger's storage (written compare-and-swap, like job records, so
it works on ``file://`` and ``gs://`` alike and outlives any process) makes a pass. A holder that
dies loses the lease after :data:`LEASE_PASSES` intervals. A pass reads only the ledger's index
of pending jobs, at most :data:`MAX_JOBS_PER_PASS` of them, oldest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from actors.job.ledger import Ledger
from actors.job.message import utcnow
from actors.job.options import ReconcileOptions
from actors.job.state import WITHDRAWN, JobState
from actors.observability import metrics
from actors.observability.logs import job_log
from actors.queue import JobQueue, QueueUnavailable
from actors.storage import PreconditionFailed, Storage

log = logging.getLogger(__name__)

LEASE_KEY = "reconciler/lease.json"
LEASE_PASSES = 3  # a lease lasts this many intervals: a holder that misses one tick keeps it
MAX_JOBS_PER_PASS = 1000


class _LeaseRecord(BaseModel):
    holder: str
    until: datetime


class Lease:
    """Held by one process at a time until ``until``; taken or renewed compare-and-swap."""

    def __init__(self, storage: Storage, holder: str, ttl: timedelta):
        self.storage, self.holder, self.ttl = storage, holder, ttl

    def acquire(self) -> bool:
        """Take the lease, or renew it if it is ours; False while another holder's is running."""
        now = utcnow()
        found = self.storage.read_json(LEASE_KEY)
        generation = "0"
        if found is not None:
            current, generation = _LeaseRecord.model_validate(found[0]), found[1]
            if current.holder != self.holder and current.until > now:
                return False
        record = _LeaseRecord(holder=self.holder, until=now + self.ttl)
        try:
            self.storage.write_json(LEASE_KEY, record.model_dump(mode="json"), generation)
        except PreconditionFailed:
            return False
        return True


@dataclass
class Pass:
    pending: int = 0  # jobs in the index
    redriven: int = 0  # published again
    unlisted: int = 0  # left the index: notified, or never recorded


class Reconciler:
    def __init__(self, options: ReconcileOptions, queue: JobQueue, storage: Storage, holder: str):
        self.options, self.queue = options, queue
        self.ledger = Ledger(storage)
        self.quiet = timedelta(seconds=options.redrive_after_seconds)
        self.lease = Lease(storage, holder, timedelta(seconds=LEASE_PASSES * options.pass_seconds))

    def tick(self) -> Pass | None:
        """One pass if this process holds the lease (None when another does)."""
        return self.run_pass() if self.lease.acquire() else None

    def run_pass(self) -> Pass:
        done = Pass()
        pending = self.ledger.pending(MAX_JOBS_PER_PASS)
        done.pending = len(pending)
        metrics.jobs_pending().set(len(pending))
        renew_at = utcnow() + self.lease.ttl / 2
        for job_id, listed_at in pending:
            if utcnow() > renew_at:  # a long pass keeps its lease, or stops if it lost it
                if not self.lease.acquire():
                    break
                renew_at = utcnow() + self.lease.ttl / 2
            try:
                self._reconcile(job_id, listed_at, done)
            except QueueUnavailable as exc:
                log.warning("reconciler: the queue is unavailable (%s); pass cut short", exc)
                break
        metrics.reconcile_passes().inc()
        if done.redriven or done.unlisted:
            log.info("reconciler pass: %s", done)
        return done

    def _reconcile(self, job_id: str, listed_at: datetime, done: Pass) -> None:
        found = self.ledger.get(job_id)
        now = utcnow()
        if found is None:  # the request was withdrawn, or failed between index and record
            if now - listed_at > self.quiet:
                self.ledger.unlist(job_id)
                done.unlisted += 1
            return
        state, generation = found
        if state.notified or state.job is None or state.status in WITHDRAWN:
            if state.job is None:
                job_log(log, job_id).error("job %s has no message on record; it cannot be re-driven", job_id)
            self.ledger.unlist(job_id)
            done.unlisted += 1
            return
        if now - _last_sign_of_life(state) < self.quiet:
            return
        self.queue.publish(state.job.to_bytes(), self.options.publish_timeout_seconds)
        try:
            self.ledger.put(state.redriven(now), generation)
        except PreconditionFailed:
            pass  # a consumer moved it meanwhile: the message just sent is a harmless duplicate
        done.redriven += 1
        metrics.jobs_redriven().inc(1, {"status": state.status.value})
        job_log(log, job_id).warning(
            "job %s: %s and silent since %s; published again",
            job_id,
            state.status.value,
            _last_sign_of_life(state).isoformat(),
        )


def _last_sign_of_life(state: JobState) -> datetime:
    return max(t for t in (state.created_at, state.heartbeat, state.redriven_at) if t is not None)
