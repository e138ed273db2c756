"""Rendered chunks → one .xlsx file: add each sheet's head and tail, then write the zip."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from actors.report.partition import Chunk, sheet_count
from actors.report.xlsx.deflate import DeflatedPart, deflate_part
from actors.report.xlsx.package import Sheet, write_xlsx
from actors.report.xlsx.rows import Column, header_row
from actors.report.xlsx.sheet import column_widths, sheet_head, sheet_names, sheet_tail

SHEET_NAME = "Catálogo"


def merge_xlsx(
    path: Path,
    longest: dict[str, int],
    headers: list[str],
    plan: list[Chunk],
    parts: Iterable[DeflatedPart],
    sheet_rows: int,
    columns: list[Column],
    sheet_name: str = SHEET_NAME,
    date_format: str = "dd/mm/yyyy",
) -> int:
    """Write the workbook from the chunk parts (in plan order); returns the file size.
    ``longest``: each column's longest value (:func:`~actors.report.xlsx.sheet.longest_values`)."""
    widths = column_widths(longest, headers, columns)
    header = header_row(headers)
    n_sheets = sheet_count(sum(chunk.length for chunk in plan), sheet_rows)
    names = sheet_names(sheet_name, n_sheets)
    per_sheet: list[list[DeflatedPart]] = [[] for _ in range(n_sheets)]
    rows = [0] * n_sheets
    for chunk, part in zip(plan, parts, strict=True):
        per_sheet[chunk.sheet].append(part)
        rows[chunk.sheet] += chunk.length
    sheets = []
    for i in range(n_sheets):
        last = rows[i] + 1
        head = deflate_part(sheet_head(widths, last, header, selected=i == 0))
        tail = deflate_part(sheet_tail(len(headers), last))
        sheets.append(Sheet(names[i], rows[i], [head, *per_sheet[i], tail]))
    return write_xlsx(path, sheets, len(headers), date_format)
