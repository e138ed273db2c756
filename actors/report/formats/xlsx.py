"""The .xlsx workbook of SPEC §5: sheet XML rendered and deflated per chunk, merged into the zip
with each sheet's head and tail (:mod:`actors.report.xlsx`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from actors.report.formats.layout import Layout
from actors.report.merge import merge_xlsx
from actors.report.xlsx.deflate import DeflatedPart, PartWriter
from actors.report.xlsx.rows import Column, render_rows
from actors.storage.base import XLSX_TYPE

EXTENSION = "xlsx"
CONTENT_TYPE = XLSX_TYPE
SHEETS = True
BATCH_ROWS = 32_768  # rows turned into XML at a time: a worker's working set, whatever the chunk size


def render_part(rows: pa.Table, first_row: int, columns: list[Column] | None = None) -> DeflatedPart:
    """Sheet XML for ``rows``, deflated batch by batch into one part."""
    part = PartWriter()
    for start in range(0, rows.num_rows, BATCH_ROWS):
        part.write(render_rows(rows.slice(start, BATCH_ROWS), first_row + start, columns))
    return part.finish()


def render(rows: pa.Table, first_row: int, columns: list[Column], headers: Sequence[str]) -> DeflatedPart:
    return render_part(rows, first_row, columns)


def merge(out: Path, parts: list[DeflatedPart], layout: Layout) -> int:
    w = layout.wording
    return merge_xlsx(
        out,
        layout.longest,
        list(w.headers),
        layout.plan,
        parts,
        layout.sheet_rows,
        layout.columns,
        w.sheet,
        w.date_format,
    )
