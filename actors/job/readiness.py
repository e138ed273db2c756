"""Which backends a consumer can use right now, by name: what ``/readyz`` answers.

Each check runs in its own thread with a deadline, so a backend that hangs (a GCS client
retrying for two minutes, a warehouse that never answers the connect) shows as unavailable
instead of holding the answer. A check opens what a job would open: the warehouse afresh (a
consumer's open connection can outlive the file or the server it came from).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from actors.job.state import JOBS_PREFIX
from actors.queue import JobQueue
from actors.storage import Storage
from actors.warehouse import open_warehouse

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
REUSE_SECONDS = 10.0  # a report this fresh is answered again: probes come every few seconds
_checks = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readiness")


def first_line(exc: BaseException) -> str:
    """What went wrong in one line (an exception with no message: its type)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _warehouse(url: str) -> None:
    open_warehouse(url).close()


def _storage(storage: Storage) -> None:
    storage.list(JOBS_PREFIX, 1)  # the ledger can be read
    storage.check_links()  # and download links can be made


def check_backends(
    queue: JobQueue, storage: Storage, warehouse_url: str, timeout: float = CHECK_SECONDS
) -> dict[str, str | None]:
    """Each backend's name → None when usable, else one line saying why not."""
    checks: dict[str, Callable[[], None]] = {
        "queue": lambda: queue.check(timeout),
        "storage": lambda: _storage(storage),
        "warehouse": lambda: _warehouse(warehouse_url),
    }
    running = {name: _checks.submit(check) for name, check in checks.items()}
    deadline = time.monotonic() + timeout
    report: dict[str, str | None] = {}
    for name, future in running.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            report[name] = None
        except FutureTimeout:
            report[name] = f"no answer within {timeout:g} s"
        except Exception as exc:
            report[name] = first_line(exc)
    return report


class BackendChecks:
    """:func:`check_backends`, run at most once every ``reuse`` seconds: load balancers ask for
    readiness every few seconds, often several at once, and each check opens a warehouse session
    (a Redshift login). A backend that comes back shows as usable within ``reuse`` seconds."""

    def __init__(self, queue: JobQueue, storage: Storage, warehouse_url: str, reuse: float = REUSE_SECONDS):
        self._args = (queue, storage, warehouse_url)
        self._reuse = reuse
        self._lock = threading.Lock()
        self._report: dict[str, str | None] = {}
        self._at = -float("inf")

    def report(self) -> dict[str, str | None]:
        with self._lock:  # callers at the same moment share one check
            if time.monotonic() - self._at >= self._reuse:
                self._report, self._at = check_backends(*self._args), time.monotonic()
                for name, why in self._report.items():  # once per check, not once per probe
                    if why:
                        log.warning("backend %s unavailable: %s", name, why)
            return dict(self._report)
