"""Arrow table → ``<row>`` XML, vectorised over columns (the hot path).

Every column becomes one Arrow string array of finished cells; one element-wise join per row
then yields the rows, and the joined array's value buffer *is* the XML, with no Python loop
over rows. Cells carry no ``r`` reference (optional in SpreadsheetML; readers count them),
empty values are written as ``<c/>`` to keep positions, text is an inline string.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_TEXT_UNITS = 32_767  # Excel's cell limit, counted in UTF-16 code units as Excel counts
EXCEL_EPOCH_OFFSET = 25_569  # days from 1899-12-30 (Excel's day 0) to 1970-01-01
_ILLEGAL_XML = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
# Excel (and calamine) decode "_xHHHH_" in cell text, openpyxl does not decode it in inline
# strings: so a text containing it is written as rich-text runs split after every "_x", which
# every reader concatenates back to the exact text and none decodes.
_EXCEL_ESCAPE = r"_x[0-9A-Fa-f]{4}_"
_RUN_BREAK = '_x</t></r><r><t xml:space="preserve">'
_EMPTY = "<c/>"
STYLE_BOLD = 1
STYLE_DATE = 2


def clean_text(values: pa.Array) -> pa.Array:
    """Apply the SPEC's text rules: drop XML-forbidden characters, cut to Excel's limit."""
    values = pc.replace_substring_regex(values, _ILLEGAL_XML, "")
    too_long = pc.fill_null(pc.greater(pc.binary_length(values), MAX_TEXT_UNITS), False)
    if pc.any(too_long).as_py():
        idx = np.flatnonzero(too_long.to_numpy(zero_copy_only=False))
        cut = pa.array([_cut_utf16(values[int(i)].as_py()) for i in idx], pa.string())
        values = pc.replace_with_mask(values, too_long, cut)
    return values


def _cut_utf16(s: str) -> str:
    # A dangling half of a surrogate pair at the cut is dropped by errors="ignore".
    return s.encode("utf-16-le")[: 2 * MAX_TEXT_UNITS].decode("utf-16-le", errors="ignore")


def _escape(values: pa.Array) -> pa.Array:
    values = pc.replace_substring(values, "&", "&amp;")
    values = pc.replace_substring(values, "<", "&lt;")
    values = pc.replace_substring(values, ">", "&gt;")
    return pc.replace_substring(values, "\r", "&#13;")  # XML parsers would turn CR into LF


def text_cells(values: pa.Array, style: int | None = None) -> pa.Array:
    """Inline-string cells; null and empty strings become empty cells."""
    s = f' s="{style}"' if style else ""
    text = _escape(clean_text(values))
    text = pc.if_else(pc.equal(pc.binary_length(text), 0), None, text)
    cells = pc.binary_join_element_wise(
        f'<c t="inlineStr"{s}><is><t xml:space="preserve">', text, "</t></is></c>", ""
    )
    needs_runs = pc.fill_null(pc.match_substring_regex(text, _EXCEL_ESCAPE), False)
    if pc.any(needs_runs).as_py():
        runs = pc.binary_join_element_wise(
            f'<c t="inlineStr"{s}><is><r><t xml:space="preserve">',
            pc.replace_substring(text, "_x", _RUN_BREAK),
            "</t></r></is></c>",
            "",
        )
        cells = pc.if_else(needs_runs, runs, cells)
    return pc.fill_null(cells, _EMPTY)


def number_cells(values: pa.Array, style: int | None = None) -> pa.Array:
    s = f' s="{style}"' if style else ""
    cells = pc.binary_join_element_wise(f"<c{s}><v>", pc.cast(values, pa.string()), "</v></c>", "")
    return pc.fill_null(cells, _EMPTY)


def date_cells(values: pa.Array) -> pa.Array:
    """Dates as Excel serial day numbers with the date style (a real date cell, not text)."""
    serial = pc.add(pc.cast(values, pa.int32()).cast(pa.int64()), EXCEL_EPOCH_OFFSET)
    return number_cells(serial, STYLE_DATE)


def cells_for(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return text_cells(column)
    if pa.types.is_date(t):
        return date_cells(column)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return number_cells(column)
    raise TypeError(f"no cell writer for Arrow type {t}")


def render_rows(table: pa.Table, first_row: int) -> memoryview:
    """The ``<row>`` elements for ``table``, numbered from ``first_row`` (1-based sheet row)."""
    n = table.num_rows
    if n == 0:
        return memoryview(b"")
    numbers = pc.cast(pa.array(np.arange(first_row, first_row + n, dtype=np.int64)), pa.string())
    pieces: list = ['<row r="', numbers, '">']
    for column in table.columns:
        pieces.append(cells_for(column.combine_chunks()))
    pieces.append("</row>")
    rows = pc.binary_join_element_wise(*pieces, "")
    return _values_buffer(rows)


def header_row(headers: list[str]) -> bytes:
    """Row 1: bold inline strings."""
    cells = text_cells(pa.array(headers, pa.string()), STYLE_BOLD)
    return ('<row r="1">' + "".join(cells.to_pylist()) + "</row>").encode()


def _values_buffer(arr: pa.Array) -> memoryview:
    """All strings of a null-free string array laid end to end, without copying."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32 if arr.type == pa.string() else np.int64)
    start, end = offsets[arr.offset], offsets[arr.offset + len(arr)]
    return memoryview(arr.buffers()[2])[start:end]
