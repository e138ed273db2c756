"""CSV (SPEC §2a): RFC 4180 with commas and CRLF, UTF-8 with a BOM, a header row, one file
whatever the row count, dates ``YYYY-MM-DD``, and a text a spreadsheet would take for a formula
(it begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) prefixed with ``'``.

Render tasks turn their chunks into CSV text with Arrow's string kernels; the merge writes the
BOM and the header, then the parts' bytes as they are. Texts are written whole: 32,767
characters is a limit of Excel's cells, not of CSV.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors.report.formats.layout import Layout
from actors.report.xlsx.rows import Column, Dates, Link

EXTENSION = "csv"
CONTENT_TYPE = "text/csv; charset=utf-8"
SHEETS = False
BATCH_ROWS = 32_768  # rows turned into text at a time

_FORMULA = r"^[=+\-@\t\r]"
_NEEDS_QUOTES = r'[",\r\n]'


def escape(texts: pa.Array) -> pa.Array:
    """Texts as CSV fields: a formula's prefix, then quotes where RFC 4180 needs them."""
    texts = pc.fill_null(texts, "")
    texts = pc.if_else(pc.match_substring_regex(texts, _FORMULA), pc.binary_join_element_wise("'", texts, ""), texts)
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(texts, '"', '""'), '"', "")
    return pc.if_else(pc.match_substring_regex(texts, _NEEDS_QUOTES), quoted, texts)


def _field(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):  # the school texts: escape the few distinct ones
        return pc.fill_null(pc.take(escape(values.dictionary), values.indices), "")
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return escape(values)
    return pc.fill_null(pc.cast(values, pa.string()), "")  # integers; dates as YYYY-MM-DD


def lines(fields: Sequence[pa.Array]) -> bytes:
    """Fields (equal lengths) as CSV lines, each ending in CRLF."""
    joined = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "", "\r\n")
    offsets = np.frombuffer(joined.buffers()[1], np.int32)[joined.offset : joined.offset + len(joined) + 1]
    return joined.buffers()[2][offsets[0] : offsets[-1]].to_pybytes() if len(joined) else b""


def render(rows: pa.Table, first_row: int, columns: list[Column], headers: Sequence[str]) -> bytes:
    """One chunk's rows as CSV lines."""
    out = []
    for start in range(0, rows.num_rows, BATCH_ROWS):
        batch = rows.slice(start, BATCH_ROWS)
        fields = []
        for column in columns:
            if isinstance(column, Link):
                fields.append(escape(column.values(batch)))
            else:
                fields.append(_field(batch[column.key if isinstance(column, Dates) else column].combine_chunks()))
        out.append(lines(fields))
    return b"".join(out)


def merge(out: Path, parts: list[bytes], layout: Layout) -> int:
    """BOM, header, then the parts in plan order; returns the file size."""
    with open(out, "wb") as f:
        f.write(codecs.BOM_UTF8)
        f.write(lines([escape(pa.array([h], pa.string())) for h in layout.wording.headers]))
        for part in parts:
            f.write(part)
        return f.tell()
