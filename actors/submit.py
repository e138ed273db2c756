"""Accepting a job: its ledger record first, then its message. Whatever a queue later loses,
the ledger still knows every job any queue was told about."""

from __future__ import annotations

from actors.job import CatalogJob, JobState
from actors.ledger import Ledger
from actors.queue import JobQueue


class Unavailable(Exception):
    """A backend the job needs did not answer, so it was not accepted; retrying may help."""


def submit(ledger: Ledger, queue: JobQueue, job: CatalogJob) -> None:
    """Record ``job`` as queued, then publish it. Raises :class:`Unavailable` when the ledger
    cannot be written (nothing was published then)."""
    try:
        created = ledger.create(JobState.accepted(job))
    except Exception as exc:
        raise Unavailable("the job could not be recorded") from exc
    if created is None:  # a ULID that is already taken: something is badly wrong
        raise RuntimeError(f"job id {job.job_id} is already in the ledger")
    queue.publish(job.to_bytes())
