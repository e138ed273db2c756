"""Arrow table → ``<row>`` XML, vectorised over columns (the hot path).

Each column becomes either pieces spliced straight into one element-wise join per row (columns
with no empty values) or one array of finished cells (columns with empties, written ``<c/>`` to
keep positions); the joined array's value buffer *is* the XML, with no Python loop over rows.
Cells carry no ``r`` reference (optional in SpreadsheetML; every reader counts them), text is an
inline string. The costly text passes (dropping XML-forbidden characters, escaping, cutting long
texts) run only on columns whose bytes a quick scan shows need them, which real data rarely does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
_TEXT_OPEN, _TEXT_CLOSE = '<c t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"
STYLE_BOLD = 1
STYLE_DATE = 2

# Bytes whose presence calls for a text pass: C0 controls (illegal, or CR to escape), the XML
# specials, "_" (Excel's escape), and 0xEF (lead byte of U+FFFE/U+FFFF).
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[[b for b in range(32) if b not in (9, 10)]] = True
_SPECIAL = _CONTROL.copy()
_SPECIAL[[ord("&"), ord("<"), ord(">"), ord("_"), 0xEF]] = True
_NOT_SPECIAL = bytes(b for b in range(256) if not _SPECIAL[b])  # for bytes.translate(None, …)


def _string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array, without copying."""
    kind = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=kind)[values.offset: values.offset + len(values) + 1]
    data = values.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    return offsets, raw[offsets[0]: offsets[-1]] if len(offsets) else raw[:0]


def _rare_bytes(values: pa.Array) -> set[int]:
    """Which of the special bytes occur (``bytes.translate`` deleting the others is the fastest
    scan measured: 4x a numpy mask)."""
    _, raw = _string_buffers(values)
    return set(raw.tobytes().translate(None, _NOT_SPECIAL))


def clean_text(values: pa.Array, rare: set[int]) -> pa.Array:
    """Apply the SPEC's text rules: drop XML-forbidden characters, cut to Excel's limit
    (``rare``: the special bytes :func:`_rare_bytes` found in ``values``)."""
    if any(_CONTROL[b] and b != 13 for b in rare) or 0xEF in rare:
        values = pc.replace_substring_regex(values, _ILLEGAL_XML, "")
    offsets, _ = _string_buffers(values)
    if len(offsets) > 1 and int(np.max(np.diff(offsets))) > MAX_TEXT_UNITS:
        too_long = pc.fill_null(pc.greater(pc.binary_length(values), MAX_TEXT_UNITS), False)
        idx = np.flatnonzero(too_long.to_numpy(zero_copy_only=False))
        cut = pa.array([_cut_utf16(values[int(i)].as_py()) for i in idx], pa.string())
        values = pc.replace_with_mask(values, too_long, cut)
    return values


def _cut_utf16(s: str) -> str:
    # A dangling half of a surrogate pair at the cut is dropped by errors="ignore".
    return s.encode("utf-16-le")[: 2 * MAX_TEXT_UNITS].decode("utf-16-le", errors="ignore")


def _escape(values: pa.Array, rare: set[int]) -> pa.Array:
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        if ord(char) in rare:  # (CR: XML parsers would turn it into LF)
            values = pc.replace_substring(values, char, entity)
    return values


def text_pieces(values: pa.Array, style: int | None = None) -> list:
    """Inline-string cells for ``values``: splice-able pieces, or one array of finished cells
    when some values are null or empty (those become empty cells)."""
    s = f' s="{style}"' if style else ""
    values = values.cast(pa.string()) if pa.types.is_large_string(values.type) else values
    rare = _rare_bytes(values)
    text = _escape(clean_text(values, rare), rare)
    open_, close = f'<c t="inlineStr"{s}><is><t xml:space="preserve">', _TEXT_CLOSE
    runs = None
    if ord("_") in rare:
        runs = pc.fill_null(pc.match_substring_regex(text, _EXCEL_ESCAPE), False)
        runs = runs if pc.any(runs).as_py() else None
    empty = pc.equal(pc.binary_length(text), 0)
    if text.null_count == 0 and runs is None and not pc.any(empty).as_py():
        return [open_, text, close]
    text = pc.if_else(empty, None, text)
    cells = pc.binary_join_element_wise(open_, text, close, "")
    if runs is not None:
        split = pc.replace_substring(text, "_x", _RUN_BREAK)
        rich = pc.binary_join_element_wise(f'<c t="inlineStr"{s}><is><r><t xml:space="preserve">', split,
                                           "</t></r></is></c>", "")
        cells = pc.if_else(runs, rich, cells)
    return [pc.fill_null(cells, _EMPTY)]


def number_pieces(values: pa.Array, style: int | None = None) -> list:
    s = f' s="{style}"' if style else ""
    text = pc.cast(values, pa.string())
    if values.null_count == 0:
        return [f"<c{s}><v>", text, "</v></c>"]
    return [pc.fill_null(pc.binary_join_element_wise(f"<c{s}><v>", text, "</v></c>", ""), _EMPTY)]


def date_pieces(values: pa.Array) -> list:
    """Dates as Excel serial day numbers with the date style (a real date cell, not text)."""
    serial = pc.add(pc.cast(values, pa.int32()).cast(pa.int64()), EXCEL_EPOCH_OFFSET)
    return number_pieces(serial, STYLE_DATE)


@dataclass(frozen=True)
class Link:
    """A text column spelled out from literal text around an integer column's digits (the
    course URLs): rendered as pieces around those digits, so its strings are never built,
    shipped to a render actor or scanned."""

    parts: tuple[str, ...]  # the literal text before, between and after the key's digits
    key: str  # an integer column of the table

    def values(self, table: pa.Table) -> pa.Array:
        """The column's strings (for writers that need them, and for checks)."""
        if len(self.parts) == 1:
            return pa.array([self.parts[0]] * table.num_rows, pa.string())
        return pc.binary_join_element_wise(*_spliced(self.parts, table[self.key].combine_chunks()), "")


def _spliced(literals, key: pa.Array) -> list:
    """``literals`` with the key's digits between each two: pieces for one element-wise join."""
    digits = pc.cast(key, pa.string())
    pieces: list = [literals[0]]
    for literal in literals[1:]:
        pieces += [digits, literal]
    return pieces


Column = str | Link  # a sheet column: a table column by name, or a link built from one


def link_pieces(link: Link, table: pa.Table) -> list:
    """Cells of ``link``: the literals cleaned and escaped once, the key's digits spliced between
    them. Where splicing could differ from the plain text path (null keys, an Excel escape that
    digits could complete, a text near Excel's limit) the built strings take that path."""
    key = table[link.key].combine_chunks()
    if not pa.types.is_integer(key.type):
        raise TypeError(f"a link needs an integer key column, not {key.type}")
    literal = "".join(link.parts)
    units = len(literal.encode("utf-16-le")) // 2 + 20 * (len(link.parts) - 1)  # ≤ 20 digits per key
    if key.null_count or len(link.parts) < 2 or "_x" in literal or units > MAX_TEXT_UNITS:
        return text_pieces(link.values(table))
    parts = pa.array(list(link.parts), pa.string())
    rare = _rare_bytes(parts)
    escaped = _escape(clean_text(parts, rare), rare).to_pylist()
    pieces = _spliced(escaped, key)
    pieces[0], pieces[-1] = _TEXT_OPEN + pieces[0], pieces[-1] + _TEXT_CLOSE
    return pieces


def dictionary_pieces(column: pa.DictionaryArray) -> list:
    """Cells of a dictionary-encoded column: each distinct value rendered once, then taken."""
    cells = pieces_for(column.dictionary)
    if len(cells) > 1:
        cells = [pc.binary_join_element_wise(*cells, "")]
    return [pc.fill_null(pc.take(cells[0], column.indices), _EMPTY)]


def pieces_for(column: pa.Array) -> list:
    t = column.type
    if pa.types.is_dictionary(t):
        return dictionary_pieces(column)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return text_pieces(column)
    if pa.types.is_date(t):
        return date_pieces(column)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return number_pieces(column)
    raise TypeError(f"no cell writer for Arrow type {t}")


def render_rows(table: pa.Table, first_row: int, columns: Sequence[Column] | None = None) -> memoryview:
    """The ``<row>`` elements for ``table``, numbered from ``first_row`` (1-based sheet row);
    ``columns``: the sheet's columns in order (default: the table's)."""
    n = table.num_rows
    if n == 0:
        return memoryview(b"")
    numbers = pc.cast(pa.array(np.arange(first_row, first_row + n, dtype=np.int64)), pa.string())
    pieces: list = ['<row r="', numbers, '">']
    for column in columns or table.column_names:
        if isinstance(column, Link):
            pieces += link_pieces(column, table)
        else:
            pieces += pieces_for(table[column].combine_chunks())
    pieces.append("</row>")
    rows = pc.binary_join_element_wise(*_merge_literals(pieces), "")
    return memoryview(_string_buffers(rows)[1])  # the joined rows, end to end, not copied


def header_row(headers: list[str]) -> bytes:
    """Row 1: bold inline strings."""
    pieces = text_pieces(pa.array(headers, pa.string()), STYLE_BOLD)
    cells = pc.binary_join_element_wise(*pieces, "") if len(pieces) > 1 else pieces[0]
    return ('<row r="1">' + "".join(cells.to_pylist()) + "</row>").encode()


def _merge_literals(pieces: list) -> list:
    """Adjacent literal strings as one argument: fewer inputs for the join kernel."""
    merged: list = []
    for p in pieces:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return merged

