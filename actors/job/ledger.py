"""Job state in storage (``jobs/{id}.json``), read and written compare-and-swap, and two indexes
of empty objects whose names say what to read:

- ``jobs-pending/{id}``: the jobs not yet notified, so the reconciler reads those and not every
  job there ever was;
- ``history/{institution}/{user}/{newest-first}-{id}``: each requester's jobs, newest first by
  name, so listing a user's jobs reads that user's prefix alone, whatever other users have.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from actors.job.state import JOBS_PREFIX, JobState, Status, ledger_key
from actors.storage import PreconditionFailed, Storage

ABSENT = "0"
PENDING = "jobs-pending/"
HISTORY = "history"
_MS_LIMIT = 10**13  # milliseconds since 1970 stay below this until the year 2286


def history_prefix(institution_id: int, user_id: int) -> str:
    return f"{HISTORY}/{institution_id}/{user_id}/"


def history_name(state: JobState) -> str:
    """Sorts newest first: the creation time counted down, then the id (any job id scheme)."""
    millis = int(state.created_at.timestamp() * 1000)
    return f"{_MS_LIMIT - 1 - millis:013d}-{state.id}"


def job_id_of(history_entry: str) -> str:
    return history_entry.split("-", 1)[1]


class Ledger:
    def __init__(self, storage: Storage):
        self.storage = storage
        self._reads = ThreadPoolExecutor(8, thread_name_prefix="ledger-read")  # a page's records at once

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
        self.storage.write_json(history_prefix(state.institution_id, state.user_id) + history_name(state), {}, None)
        try:
            return self.put(state, ABSENT)
        except PreconditionFailed:
            return None

    def withdraw(self, state: JobState, generation: str) -> bool:
        """Remove a record nobody has touched since ``generation``, and its index entries; False
        when a consumer already claimed it (so the message it was published in did arrive)."""
        try:
            self.storage.delete(ledger_key(state.id), generation)
        except PreconditionFailed:
            return False
        self.unlist(state.id)
        self.storage.delete(history_prefix(state.institution_id, state.user_id) + history_name(state))
        return True

    def unlist(self, job_id: str) -> None:
        """Drop a job from the index of pending ones (it was notified, or never recorded)."""
        self.storage.delete(PENDING + job_id)

    def history(self, institution_id: int, user_id: int, limit: int, after: str | None = None) -> list[str]:
        """Up to ``limit`` entries of one requester's index, newest first, after the entry
        ``after`` (a cursor: an entry name returned before). :func:`job_id_of` names the job."""
        return [name for name, _ in self.storage.list(history_prefix(institution_id, user_id), limit, after)]

    def jobs_of(
        self, institution_id: int, user_id: int, limit: int, after: str | None = None, status: Status | None = None
    ) -> tuple[list[JobState], str | None]:
        """One requester's jobs, newest first: up to ``limit`` (with ``status`` only, when given)
        after the history entry ``after``, and the entry to continue after (None: no more). It
        reads that requester's index and records alone: other users' jobs cost nothing."""
        found: list[JobState] = []
        while len(found) < limit:
            page = self.history(institution_id, user_id, limit, after)
            states = list(self._reads.map(self._get_state, map(job_id_of, page)))
            for entry, state in zip(page, states):
                after = entry
                # No record: a request withdrawn, or one being created right now.
                if state is not None and (status is None or state.status is status):
                    found.append(state)
                    if len(found) == limit:
                        break
            if len(page) < limit:
                return found, None
        return found, (after if self.history(institution_id, user_id, 1, after) else None)

    def _get_state(self, job_id: str) -> JobState | None:
        got = self.get(job_id)
        return got[0] if got else None

    def pending(self, limit: int) -> list[tuple[str, datetime]]:
        """Up to ``limit`` job ids in the index (oldest first for ULIDs), with when each was listed."""
        return self.storage.list(PENDING, limit)
