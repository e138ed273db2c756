"""Accepting a job: its ledger record first, then its message. Whatever a queue later loses,
the ledger still knows every job any queue was told about; and a job whose message could not
be published is withdrawn, so the ledger keeps no job nobody was told was accepted."""

from __future__ import annotations

import logging

from actors.job.ledger import Ledger
from actors.job.message import CatalogJob
from actors.job.state import JobState
from actors.queue import PUBLISH_TIMEOUT, JobQueue, QueueUnavailable

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """A backend the job needs did not answer, so it was not accepted; retrying may help."""


def submit(ledger: Ledger, queue: JobQueue, job: CatalogJob, publish_timeout: float = PUBLISH_TIMEOUT) -> None:
    """Record ``job`` as queued, then publish it within ``publish_timeout``. Raises
    :class:`Unavailable` when either fails; after a failed publish the record is withdrawn,
    unless a consumer has already claimed it (the message got through after all: accepted)."""
    try:
        state = JobState.accepted(job)
        generation = ledger.create(state)
    except Exception as exc:
        raise Unavailable("the job could not be recorded") from exc
    if generation is None:  # a ULID that is already taken: something is badly wrong
        raise RuntimeError(f"job id {job.job_id} is already in the ledger")
    try:
        queue.publish(job.to_bytes(), publish_timeout)
    except QueueUnavailable as exc:
        try:
            if not ledger.withdraw(state, generation):
                return
        except Exception:  # the record stays; the reconciler publishes it once the queue is back
            log.exception("job %s: not published, and its record could not be withdrawn", job.job_id)
        raise Unavailable("the job queue did not answer") from exc
