"""What a format's merge may need to know about the report besides its parts (one object, so the
formats share one merge signature and each reads only what it uses)."""

from __future__ import annotations

from dataclasses import dataclass

from actors.report.partition import Chunk
from actors.report.wording import Wording
from actors.report.xlsx.rows import Column


@dataclass(frozen=True)
class Layout:
    plan: list[Chunk]  # the chunks, in report order: one part each
    columns: list[Column]
    wording: Wording
    longest: dict[str, int]  # each column's longest value (column widths)
    sheet_rows: int  # data rows per sheet, for formats with sheets
