"""The same request twice creates one job (SPEC §2a): a replayed ``Idempotency-Key`` and an
identical request while the first is still queued or running both get the first job's id.

Both are remembered in the ledger's storage, so they hold across replicas and restarts:

- ``requests/keys/{institution}/{user}/{sha256(key)}.json``: the job a key created and the
  request's fingerprint, for 24 hours;
- ``requests/same/{institution}/{user}/{fingerprint}.json``: the last job these parameters
  created (a duplicate only while that job is queued or running).

Each is claimed compare-and-swap before the job is recorded, so of two racing requests one
creates the job and the other is answered with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.job.ledger import ABSENT, Ledger
from actors.job.message import CatalogJob, utcnow
from actors.job.state import IN_FLIGHT
from actors.storage import PreconditionFailed

KEY_LIFETIME = timedelta(hours=24)
BEING_ACCEPTED = timedelta(minutes=1)  # longer than recording and publishing a job may take
_TRIES = 3


class KeyReused(Exception):
    """The Idempotency-Key already stands for a request with other parameters."""


def fingerprint(job: CatalogJob) -> str:
    """What makes two requests the same: who asked, and every parameter of the report."""
    asked = {
        "institution": job.institution_id,
        "user": job.user_id,
        "startDate": job.start_date.isoformat(),
        "endDate": job.end_date.isoformat(),
        "schoolIds": sorted(job.school_ids) if job.school_ids else None,
        "format": job.format,
        "locale": job.locale,
        "timezone": job.timezone,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`Requests.claim`: ``job_id`` is the job that answers the request;
    ``new`` when it is the request's own job (to record and publish), False for a replay or a
    duplicate (nothing to create, nothing to count against the rate limit)."""

    job_id: str
    new: bool


def _key_record(job_id: str, print_: str) -> dict:
    return {"jobId": job_id, "fingerprint": print_, "createdAt": utcnow().isoformat()}


class Requests:
    def __init__(self, ledger: Ledger):
        self.ledger, self.storage = ledger, ledger.storage

    @staticmethod
    def _key_path(job: CatalogJob, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"requests/keys/{job.institution_id}/{job.user_id}/{digest}.json"

    @staticmethod
    def _same_path(job: CatalogJob, print_: str) -> str:
        return f"requests/same/{job.institution_id}/{job.user_id}/{print_}.json"

    def earlier(self, job: CatalogJob, key: str | None) -> str | None:
        """The job an earlier request answers this one with, if any, without claiming anything:
        the rate limit is asked only when this returns None. Raises KeyReused."""
        print_ = fingerprint(job)
        if key is not None and (
            answer := self._key_answer(self.storage.read_json(self._key_path(job, key)), key, print_)
        ):
            return answer
        found = self.storage.read_json(self._same_path(job, print_))
        if found and self._in_flight(found[0]):
            return found[0]["jobId"]
        return None

    def claim(self, job: CatalogJob, key: str | None) -> Claim:
        """Make ``job`` the answer to its key and its parameters, unless another request got
        there first (then its job is the answer). Raises KeyReused."""
        print_ = fingerprint(job)
        if key is not None:
            path = self._key_path(job, key)
            for _ in range(_TRIES):
                found = self.storage.read_json(path)
                if answer := self._key_answer(found, key, print_):
                    return Claim(answer, False)
                try:  # over an expired record only if nobody has replaced it meanwhile
                    self.storage.write_json(path, _key_record(job.job_id, print_), found[1] if found else ABSENT)
                    break
                except PreconditionFailed:
                    continue  # another request with this key won: the next read finds its job
        same = self._same_path(job, print_)
        for _ in range(_TRIES):
            found = self.storage.read_json(same)
            if found and found[0]["jobId"] != job.job_id and self._in_flight(found[0]):
                if key is not None:  # the key now stands for the duplicate's job
                    self.storage.write_json(self._key_path(job, key), _key_record(found[0]["jobId"], print_), None)
                return Claim(found[0]["jobId"], False)
            record = {"jobId": job.job_id, "createdAt": utcnow().isoformat()}
            try:
                self.storage.write_json(same, record, found[1] if found else ABSENT)
                return Claim(job.job_id, True)
            except PreconditionFailed:
                continue
        return Claim(job.job_id, True)

    def release(self, job: CatalogJob, key: str | None) -> None:
        """The job was not accepted after all: a retry with the same key or parameters must be
        able to create it."""
        if key is not None:
            self.storage.delete(self._key_path(job, key))
        self.storage.delete(self._same_path(job, fingerprint(job)))

    @staticmethod
    def _key_answer(found: tuple[dict, str] | None, key: str, print_: str) -> str | None:
        """The job a key's record names while it lasts (a day; then the key is free again);
        KeyReused when it was given for other parameters."""
        if found is None or utcnow() - datetime.fromisoformat(found[0]["createdAt"]) > KEY_LIFETIME:
            return None
        if found[0]["fingerprint"] != print_:
            raise KeyReused(key)
        return found[0]["jobId"]

    def _in_flight(self, same: dict) -> bool:
        """Whether the job a ``requests/same`` record names is queued or running; one with no
        ledger record yet is being accepted right now (its request claims, then records)."""
        found = self.ledger.get(same["jobId"])
        if found is None:
            return utcnow() - datetime.fromisoformat(same["createdAt"]) < BEING_ACCEPTED
        return found[0].status in IN_FLIGHT
