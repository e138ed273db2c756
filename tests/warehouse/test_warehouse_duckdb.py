"""The embedded warehouse's side of a canceled job: Warehouse.interrupt stops the statement a
thread is running (DuckDB's own interrupt), and the warehouse serves the next read."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

import pyarrow as pa

from actors.warehouse import CatalogQuery, open_warehouse
from actors.warehouse.base import FetchInterrupted
from tests.support.data import P_END, P_START

ENDLESS = ("SELECT sum(hash(range)) AS n FROM range(1000000000000)", [])  # hours of work


def test_an_interrupted_read_stops_at_once_and_the_next_one_runs(warehouse):
    duck = open_warehouse(f"duckdb://{warehouse}")
    raised: list[BaseException] = []

    def read():
        try:
            duck._arrow((ENDLESS, pa.schema([("n", pa.decimal128(38, 0))])))
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    deadline = time.monotonic() + 10
    while not duck._running and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # well into the statement
    started = time.monotonic()
    duck.interrupt(thread.ident)
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 1
    assert len(raised) == 1 and isinstance(raised[0], FetchInterrupted), raised
    assert duck.fetch(CatalogQuery.for_dates(1, P_START, P_END, ZoneInfo("UTC"))).courses.num_rows > 0
    duck.close()
