"""Job state in storage (``jobs/{id}.json``), read and written compare-and-swap, and an index of
the jobs not yet notified (``jobs-pending/{id}``), so the reconciler reads those and not every
job there ever was."""

from __future__ import annotations

from datetime import datetime

from actors.job.state import JOBS_PREFIX, JobState, ledger_key
from actors.storage import PreconditionFailed, Storage

ABSENT = "0"
PENDING = "jobs-pending/"


class Ledger:
    def __init__(self, storage: Storage):
        self.storage = storage

    def get(self, job_id: str) -> tuple[JobState, str] | None:
        found = self.storage.read_json(ledger_key(job_id))
        if found is None:
            return None
        data, generation = found
        return JobState.model_validate(data), generation

    def created_since(self, since: datetime) -> list[JobState]:
        """Jobs created at or after ``since`` (read from the records written since then: a job's
        record is written when it is created and whenever it changes)."""
        found = (self.storage.read_json(key) for key in self.storage.keys_written_since(JOBS_PREFIX, since))
        states = (JobState.model_validate(record) for record, _ in filter(None, found))
        return [state for state in states if state.created_at >= since]

    def put(self, state: JobState, generation: str | None) -> str:
        """Write ``state`` if the record is still at ``generation`` (``ABSENT``: not there yet)."""
        return self.storage.write_json(ledger_key(state.id), state.model_dump(mode="json"), generation)

    def create(self, state: JobState) -> str | None:
        """Record a new job unless someone already did: its generation, or None when the id was
        taken. Storage errors are raised: a job is never accepted without its record. The index
        entry comes first, so no record ever exists unindexed (an entry without a record is
        removed by the reconciler)."""
        self.storage.write_json(PENDING + state.id, {}, None)
        try:
            return self.put(state, ABSENT)
        except PreconditionFailed:
            return None

    def withdraw(self, job_id: str, generation: str) -> bool:
        """Remove a record nobody has touched since ``generation``; False when a consumer already
        claimed it (so the message it was published in did arrive)."""
        try:
            self.storage.delete(ledger_key(job_id), generation)
        except PreconditionFailed:
            return False
        self.unlist(job_id)
        return True

    def unlist(self, job_id: str) -> None:
        """Drop a job from the index of pending ones (it was notified, or never recorded)."""
        self.storage.delete(PENDING + job_id)

    def pending(self, limit: int) -> list[tuple[str, datetime]]:
        """Up to ``limit`` job ids in the index (oldest first for ULIDs), with when each was listed."""
        return self.storage.list(PENDING, limit)
