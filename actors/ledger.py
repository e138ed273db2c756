"""Job state in storage (``jobs/{id}.json``), read and written compare-and-swap."""

from __future__ import annotations

from actors.job import JobState, ledger_key
from actors.storage import PreconditionFailed, Storage

ABSENT = "0"


class Ledger:
    def __init__(self, storage: Storage):
        self.storage = storage

    def get(self, job_id: str) -> tuple[JobState, str] | None:
        found = self.storage.read_json(ledger_key(job_id))
        if found is None:
            return None
        data, generation = found
        return JobState.model_validate(data), generation

    def put(self, state: JobState, generation: str | None) -> str:
        """Write ``state`` if the record is still at ``generation`` (``ABSENT``: not there yet)."""
        return self.storage.write_json(ledger_key(state.id), state.model_dump(mode="json"), generation)

    def create(self, state: JobState) -> str | None:
        """Record a new job unless someone already did: its generation, or None when the id was
        taken. Storage errors are raised: a job is never accepted without its record."""
        try:
            return self.put(state, ABSENT)
        except PreconditionFailed:
            return None

    def withdraw(self, job_id: str, generation: str) -> bool:
        """Remove a record nobody has touched since ``generation``; False when a consumer already
        claimed it (so the message it was published in did arrive)."""
        try:
            self.storage.delete(ledger_key(job_id), generation)
            return True
        except PreconditionFailed:
            return False
