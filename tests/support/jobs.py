"""Report requests as the API builds them, for tests that talk to the job layer directly."""

from __future__ import annotations

from datetime import date

from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, new_job_id, utcnow
from actors.job.submit import submit


def catalog_job(**changes) -> CatalogJob:
    """Institution 1's user 7 asking for 2025 in UTC, a fresh job id; ``changes`` override any field."""
    fields = dict(
        job_id=new_job_id(),
        institution_id=1,
        user_id=7,
        subdomain="demo",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
        timezone="UTC",
        requested_at=utcnow(),
    )
    return CatalogJob(**(fields | changes))


def accept(queue, storage, **changes) -> str:
    """As the API accepts a job: recorded, then published; its id."""
    job = catalog_job(**changes)
    submit(Ledger(storage), queue, job)
    return job.job_id
