"""A requester taking a job back (SPEC §2a, DELETE): a queued or running job is canceled, a
finished one's file is deleted. Written compare-and-swap against the consumer's own writes, so a
cancel that races the job's last step ends in exactly one outcome: canceled (the consumer sees
it, stops, removes what it uploaded and notifies nobody) or done (the cancel lost; the job keeps
its file and its one notification)."""

from __future__ import annotations

import logging

from actors.job.ledger import Ledger
from actors.job.state import FINISHED, IN_FLIGHT, JobState
from actors.storage import PreconditionFailed

log = logging.getLogger(__name__)

_TRIES = 20  # a running job's heartbeat rewrites its record every second


def withdraw(ledger: Ledger, state: JobState, generation: str) -> JobState:
    """Cancel ``state``'s job or delete its file; the record as it ends up. Canceled and deleted
    jobs stay as they are (repeating it changes nothing)."""
    asked_in_flight = state.status in IN_FLIGHT
    for _ in range(_TRIES):
        try:
            if state.status in IN_FLIGHT:
                ledger.put(state.canceled_now(), generation)
                _unlist(ledger, state.id)  # nothing will be notified: the reconciler has nothing to do
            elif state.status in FINISHED and not asked_in_flight:
                if state.object_key:
                    ledger.storage.delete(state.object_key)
                ledger.put(state.deleted_now(), generation)
            else:  # withdrawn already, or finished while we were canceling it: the race's other outcome
                return state
            return ledger.get(state.id)[0]
        except PreconditionFailed:
            state, generation = ledger.get(state.id)
    raise RuntimeError(f"job {state.id}: its record kept changing; try again")


def _unlist(ledger: Ledger, job_id: str) -> None:
    try:
        ledger.unlist(job_id)
    except Exception:  # the reconciler unlists withdrawn jobs too
        log.warning("job %s: could not leave the index of pending jobs", job_id, exc_info=True)
