"""query → partitions → order → chunk plan → render → merged file: the job's work, minus delivery.

Shared by the consumer and ``catalog-report render``. The fetcher and renderer are passed in:
the service fetches partitions in Ray tasks and renders on its actor pool, tests run both in
one process. Either way the bytes are the same: chunks are cut from the ordered data and the
chunk size alone, never from the number of partitions or actors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from actors.report.catalog import order_report, report_columns
from actors.report.fetch import Fetcher, fetch_here, fetch_on_ray
from actors.report.formats import FORMATS
from actors.report.formats.layout import Layout
from actors.report.options import ReportOptions
from actors.report.partition import SHEET_DATA_ROWS, lay_out, plan_chunks
from actors.report.render import RayRenderer, Renderer, render_serially
from actors.report.wording import DEFAULT_LOCALE, WORDINGS
from actors.report.xlsx.sheet import longest_values, widest
from actors.warehouse import CatalogQuery, Warehouse, open_warehouse


@dataclass
class Produced:
    rows: int
    size: int
    timings: dict[str, float] = field(default_factory=dict)


# Share of the progress bar each phase covers (rendering dominates).
_QUERY_DONE, _RENDER_DONE = 0.2, 0.9


def produce_report(
    warehouse: Warehouse,
    query: CatalogQuery,
    *,
    subdomain: str,
    options: ReportOptions,
    out: Path,
    fetch: Fetcher = fetch_here,
    render: Renderer = render_serially,
    progress: Callable[[float, str], None] = lambda fraction, phase: None,
    sheet_rows: int = SHEET_DATA_ROWS,
    locale: str = DEFAULT_LOCALE,
    file_format: str = "xlsx",
    canceled: Callable[[], bool] = lambda: False,
) -> Produced:
    """The report as one ``file_format`` file at ``out``. ``sheet_rows``: data rows per sheet,
    for formats with sheets; the others are one table. ``canceled()`` is asked while partitions
    are fetched in tasks (the caller's own warehouse read it interrupts itself; between render
    chunks, ``progress`` raises)."""
    wording, writer = WORDINGS[locale], FORMATS[file_format]
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "query")
    fetched = fetch(warehouse, query, ZoneInfo(query.zone), locale, canceled=canceled)
    names = warehouse.school_names(query)
    timings["query"] = time.perf_counter() - t

    t = time.perf_counter()
    summaries = [f.summary for f in fetched]
    sizes = [len(s.ids) for s in summaries]
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    ordering = order_report(
        np.concatenate([s.ids for s in summaries]),
        pa.chunked_array([s.title_keys for s in summaries], pa.string()),
        pa.concat_tables([s.links for s in summaries]),
        names,
    )
    rows_per_sheet = sheet_rows if writer.SHEETS else max(1, len(ordering.order))  # else: one table
    plan = plan_chunks(ordering.school, options.chunk_rows, rows_per_sheet)
    longest = widest(*(s.longest for s in summaries), longest_values(pa.table({"school": ordering.school})))
    columns = report_columns(subdomain, options.student_url_template, options.admin_url_template, wording)
    timings["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(_QUERY_DONE, "render")
    partitions, rows = lay_out([f.rows for f in fetched], ordering.order, ordering.school, plan, starts)
    del fetched  # as fetched, the rows are not needed once laid out
    timings["layout"] = time.perf_counter() - t

    t = time.perf_counter()
    span = _RENDER_DONE - _QUERY_DONE
    parts = render(
        partitions,
        plan,
        rows,
        columns,
        lambda k: progress(_QUERY_DONE + span * k / len(plan), "render"),
        file_format=file_format,
        headers=wording.headers,
    )
    timings["render"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(_RENDER_DONE, "merge")
    size = writer.merge(out, parts, Layout(plan, columns, wording, longest, sheet_rows))
    timings["merge"] = time.perf_counter() - t
    return Produced(sum(sizes), size, timings)


def produce_on_ray(
    warehouse_url: str,
    query: CatalogQuery,
    *,
    subdomain: str,
    options: ReportOptions,
    out: Path,
    render_workers: int = 0,
    file_format: str = "xlsx",
    locale: str = DEFAULT_LOCALE,
) -> Produced:
    """The whole pipeline on the Ray this process is connected to, written to ``out``: fetched in
    Ray tasks, rendered by at most ``render_workers`` chunks at once (0: the cluster's CPUs + 1)."""
    return produce_report(
        open_warehouse(warehouse_url),
        query,
        subdomain=subdomain,
        options=options,
        out=out,
        fetch=fetch_on_ray,
        render=RayRenderer(render_workers).render,
        file_format=file_format,
        locale=locale,
    )
