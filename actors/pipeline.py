"""query → report table → chunk plan → render → merged .xlsx: the job's work, minus delivery.

Shared by the consumer and ``catalog-report render``; the renderer is passed in so tests can
run it serially and the service on its actor pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from actors.catalog import HEADERS, build_report
from actors.merge import merge_xlsx
from actors.partition import SHEET_DATA_ROWS, Chunk, plan_chunks
from actors.render import render_chunk
from actors.warehouse import CatalogQuery, Warehouse
from actors.xlsx.deflate import DeflatedPart
from actors.xlsx.rows import Column

Renderer = Callable[[pa.Table, list[Chunk], Callable[[int], None], list[Column]], list[DeflatedPart]]


def render_serially(
    report: pa.Table, plan: list[Chunk], on_done: Callable[[int], None], columns: list[Column] | None = None
) -> list[DeflatedPart]:
    parts = []
    for chunk in plan:
        parts.append(render_chunk(report, chunk, columns))
        on_done(len(parts))
    return parts


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
    settings,
    out: Path,
    render: Renderer = render_serially,
    progress: Callable[[float, str], None] = lambda fraction, phase: None,
    sheet_rows: int = SHEET_DATA_ROWS,
) -> Produced:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "query")
    rows = warehouse.fetch(query)
    timings["query"] = time.perf_counter() - t

    t = time.perf_counter()
    report = build_report(
        rows,
        subdomain=subdomain,
        student_template=settings.student_url_template,
        admin_template=settings.admin_url_template,
        zone=settings.zone,
    )
    timings["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(_QUERY_DONE, "render")
    plan = plan_chunks(report.table["school"], settings.chunk_rows, sheet_rows)
    span = _RENDER_DONE - _QUERY_DONE
    parts = render(report.table, plan, lambda k: progress(_QUERY_DONE + span * k / len(plan), "render"),
                   report.columns)
    timings["render"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(_RENDER_DONE, "merge")
    size = merge_xlsx(out, report.table, HEADERS, plan, parts, sheet_rows, report.columns)
    timings["merge"] = time.perf_counter() - t
    return Produced(report.table.num_rows, size, timings)
