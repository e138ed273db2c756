"""A warehouse opened when a job first needs it, and again after an open that failed.

The consumer must start, and say what is wrong, while a warehouse is down or its file is
missing: a warehouse opened in the consumer's constructor made the whole consumer fail to start,
leaving every job ``queued`` with nobody told. Opened on demand, a job that finds the warehouse
unavailable fails its query phase and takes the ordinary path: retried with backoff, then
``failed`` with one notification.
"""

from __future__ import annotations

import threading

from actors.warehouse import open_warehouse
from actors.warehouse.base import Warehouse


class OnDemandWarehouse:
    def __init__(self, url: str):
        self.url = url
        self._opened: Warehouse | None = None
        self._lock = threading.Lock()

    def _warehouse(self) -> Warehouse:
        with self._lock:
            if self._opened is None:
                self._opened = open_warehouse(self.url)  # raises: the next call tries again
            return self._opened

    def __getattr__(self, name: str):  # fetch, school_names, id_ranges, partitioning
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._warehouse(), name)

    def interrupt(self, thread_id: int) -> None:
        with self._lock:
            opened = self._opened
        if opened is not None:  # never opened: nothing is being read
            opened.interrupt(thread_id)

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened.close()
                self._opened = None
