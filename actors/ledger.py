"""Job state in storage (``jobs/{id}.json``), read and written compare-and-swap."""

from __future__ import annotations

from datetime import datetime

from actors.job import JOBS_PREFIX, JobState, ledger_key
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

    def created_since(self, since: datetime) -> list[JobState]:
        """Jobs created at or after ``since`` (read from the records written since then: a job's
        record is written when it is created and whenever it changes)."""
        found = (self.storage.read_json(key) for key in self.storage.keys_written_since(JOBS_PREFIX, since))
        states = (JobState.model_validate(record) for record, _ in filter(None, found))
        return [state for state in states if state.created_at >= since]

    def put(self, state: JobState, generation: str | None) -> str:
        """Write ``state`` if the record is still at ``generation`` (``ABSENT``: not there yet)."""
        return self.storage.write_json(ledger_key(state.id), state.model_dump(mode="json"), generation)

    def create(self, state: JobState) -> bool:
        """Record a new job unless someone already did; True when this call created it."""
        try:
            self.put(state, ABSENT)
            return True
        except PreconditionFailed:
            return False
