"""The XML around the rows of one worksheet: frozen header, column widths, autofilter."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.compute as pc

from actors.report.xlsx.rows import Column, Dates, Link, column_letter

MAX_SHEET_ROWS = 1_048_576  # Excel's row limit, header included
MIN_WIDTH, MAX_WIDTH = 8.0, 60.0
# Gnumeric shows a General number in scientific notation unless its column is wider than the
# digits by a margin (ssconvert: 7 digits need width 10, 9 digits 13): 1234567 became "1E+06".
NUMBER_ROOM = 2

# SpreadsheetML's namespaces, for every part of the package (package.py uses them too).
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS = f'xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"'


def longest_values(table: pa.Table) -> dict[str, int]:
    """Each column's longest value in characters as shown: what its width is sized from. Kept
    per column so partitions of a report can each measure their own and :func:`widest` merge."""
    return {name: _longest(table[name]) for name in table.column_names}


def widest(*longest: dict[str, int]) -> dict[str, int]:
    return {name: max(m.get(name, 0) for m in longest) for m in longest for name in m}


def _longest(column: pa.ChunkedArray | pa.Array) -> int:
    if pa.types.is_dictionary(column.type):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        column = column.dictionary  # the longest value is among the distinct ones
    if pa.types.is_date(column.type):
        return 10
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.max(pc.utf8_length(column)).as_py() or 0
    digits = max(len(str(pc.max(column).as_py() or 0)), len(str(pc.min(column).as_py() or 0)))
    return digits + NUMBER_ROOM


def column_widths(longest: dict[str, int], headers: list[str], columns: list[Column]) -> list[float]:
    """Widths in characters from the longest value (or header), clamped to a readable range."""
    return [
        min(MAX_WIDTH, max(MIN_WIDTH, len(name) + 3, _shown(longest, spec) + 2))
        for name, spec in zip(headers, columns, strict=True)
    ]


def _shown(longest: dict[str, int], spec: Column) -> int:
    if isinstance(spec, Dates):
        return longest[spec.key]
    if isinstance(spec, Link):  # the literals around the key's digits (a text: no number's room)
        digits = longest[spec.key] - NUMBER_ROOM
        return sum(len(part) for part in spec.parts) + digits * (len(spec.parts) - 1)
    return longest[spec]


def sheet_head(widths: list[float], last_row: int, header: bytes, selected: bool) -> bytes:
    ref = f"A1:{column_letter(len(widths) - 1)}{last_row}"
    cols = "".join(f'<col min="{i}" max="{i}" width="{w:.2f}" customWidth="1"/>' for i, w in enumerate(widths, 1))
    tab = ' tabSelected="1"' if selected else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet {_NS}><dimension ref="{ref}"/>'
        f'<sheetViews><sheetView{tab} workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
    ).encode() + header


def sheet_tail(columns: int, last_row: int) -> bytes:
    ref = f"A1:{column_letter(columns - 1)}{last_row}"
    return (
        f'</sheetData><autoFilter ref="{ref}"/>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
        "</worksheet>"
    ).encode()


def sheet_names(base: str, count: int) -> list[str]:
    """``Catálogo``, ``Catálogo (2)``, ``Catálogo (3)`` … (Excel caps names at 31 characters)."""
    return [base if i == 0 else f"{base} ({i + 1})" for i in range(count)]


def quoted(name: str) -> str:
    return "'" + escape(name.replace("'", "''")) + "'"
