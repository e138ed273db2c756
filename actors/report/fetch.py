"""Fetch a report's rows in partitions, each on its own warehouse session in its own Ray task.

Decoding rows is where a report spends its time on a remote warehouse (``redshift-connector``
turns every value into a Python object), so a big report is cut into id ranges of nearly equal
size and each range is fetched, decoded and prepared (:func:`~actors.report.catalog.prepare_partition`)
in a task of its own: on several cores, and on a cluster several nodes. A partition's rows stay
in the object store, where the render tasks read them; the consumer gets back only what orders
the report (ids, title keys, school links). A small report is fetched in one piece in the
consumer itself: a task and a second session would cost more than they save (the warehouse
URL's ``partition_min_rows``); its rows stay there until they are laid out in report order
(:func:`~actors.report.partition.lay_out`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import ray

from actors.report.catalog import prepare_partition
from actors.report.wording import DEFAULT_LOCALE, WORDINGS
from actors.report.xlsx.sheet import longest_values
from actors.runtime.priority import as_background
from actors.warehouse import CatalogQuery, Warehouse, open_warehouse
from actors.warehouse.base import FetchInterrupted

CANCEL_POLL_SECONDS = 0.25  # how often a fetch in tasks looks whether its job was canceled


@dataclass(frozen=True)
class Summary:
    """What the report-wide ordering needs from one partition (its rows stay where they are)."""

    ids: np.ndarray
    title_keys: pa.Array
    links: pa.Table
    longest: dict[str, int]


@dataclass(frozen=True)
class Fetched:
    """One fetched partition: its prepared rows, here or (fetched in a task) in the object store,
    where Ray keeps an Arrow table's buffers as they are and a reader maps them without a copy."""

    rows: pa.Table | ray.ObjectRef
    summary: Summary


def fetch_prepared(
    warehouse: Warehouse, query: CatalogQuery, zone: ZoneInfo, locale: str = DEFAULT_LOCALE
) -> tuple[pa.Table, Summary]:
    """Fetch and prepare one partition in this process."""
    rows = warehouse.fetch(query)
    prepared = prepare_partition(rows, zone, WORDINGS[locale])
    cells = prepared.drop_columns(["title_key"])
    return cells, Summary(
        prepared["id"].to_numpy(), prepared["title_key"].combine_chunks(), rows.links, longest_values(cells)
    )


# No CPU reserved: other jobs' render tasks may hold every CPU of the cluster, and a fetch that
# asked for one would wait behind them (with the earlier render actors, which held their CPUs
# while idle, a job stuck at 0%).
@ray.remote(num_cpus=0, scheduling_strategy="SPREAD", max_retries=3, retry_exceptions=[ConnectionError])
def _fetch_task(url: str, query: CatalogQuery, zone: str, locale: str) -> tuple[pa.Table, Summary]:
    """One partition on its own session; retried alone if its session or its worker is lost.

    The read runs in a thread of its own while this one waits: Ray cancels a task by raising
    KeyboardInterrupt in it, which a thread blocked on the network (the server still running
    the statement) would not see until the server answered; the waiting thread sees it at once
    and has the warehouse cancel the statement on the server."""
    as_background()
    warehouse = open_warehouse(url)
    reader: list[int] = []

    def read() -> tuple[pa.Table, Summary]:
        reader.append(threading.get_ident())
        return fetch_prepared(warehouse, query, ZoneInfo(zone), locale)

    pool = ThreadPoolExecutor(1, thread_name_prefix="fetch")
    future = pool.submit(read)
    try:
        while True:
            try:
                return future.result(timeout=CANCEL_POLL_SECONDS)
            except TimeoutError:
                continue
    except KeyboardInterrupt:  # ray.cancel
        if reader:
            warehouse.interrupt(reader[0])
        futures.wait([future], timeout=10)  # the session given back before it is closed
        raise
    finally:
        pool.shutdown(wait=False)
        warehouse.close()


def partition_queries(warehouse: Warehouse, query: CatalogQuery, cpus: int) -> list[CatalogQuery]:
    """The report's query as one query per partition (one, unpartitioned, for small reports)."""
    plan = warehouse.partitioning
    k = plan.partitions or plan.default_partitions(cpus)
    if k == 1:
        return [query]
    ranges = warehouse.id_ranges(query, k)
    if not ranges or sum(r.courses for r in ranges) < plan.min_rows:
        return [query]
    return [query.part(r) for r in ranges]


def fetch_on_ray(
    warehouse: Warehouse,
    query: CatalogQuery,
    zone: ZoneInfo,
    locale: str = DEFAULT_LOCALE,
    canceled: Callable[[], bool] = lambda: False,
) -> list[Fetched]:
    """Partitions fetched in parallel Ray tasks, their rows left in the object store (one query:
    here, on the consumer's session, its rows kept here). Once ``canceled()``, the tasks are cancelled (each
    cancels its statement on the server) and :class:`FetchInterrupted` is raised."""
    queries = partition_queries(warehouse, query, int(ray.cluster_resources().get("CPU", 1)))
    if len(queries) == 1:
        rows, summary = fetch_prepared(warehouse, queries[0], zone, locale)
        return [Fetched(rows, summary)]
    pending = [_fetch_task.options(num_returns=2).remote(warehouse.url, q, zone.key, locale) for q in queries]
    summaries = [summary for _, summary in pending]
    while ray.wait(summaries, num_returns=len(summaries), timeout=CANCEL_POLL_SECONDS)[1]:
        if canceled():
            for ref in summaries:
                ray.cancel(ref)
            raise FetchInterrupted("the report was canceled while its partitions were fetched")
    return [Fetched(rows, ray.get(summary)) for rows, summary in pending]


def fetch_here(
    warehouse: Warehouse,
    query: CatalogQuery,
    zone: ZoneInfo,
    locale: str = DEFAULT_LOCALE,
    canceled: Callable[[], bool] = lambda: False,
) -> list[Fetched]:
    """Partitions fetched one after another in this process (tests, and the pipeline without Ray)."""
    fetched = []
    for q in partition_queries(warehouse, query, cpus=1):
        if canceled():
            raise FetchInterrupted("the report was canceled while its partitions were fetched")
        fetched.append(Fetched(*fetch_prepared(warehouse, q, zone, locale)))
    return fetched


class Fetcher(Protocol):
    """Fetches a report's partitions; raises :class:`FetchInterrupted` once ``canceled()``."""

    def __call__(
        self,
        warehouse: Warehouse,
        query: CatalogQuery,
        zone: ZoneInfo,
        locale: str = DEFAULT_LOCALE,
        canceled: Callable[[], bool] = lambda: False,
    ) -> list[Fetched]: ...
