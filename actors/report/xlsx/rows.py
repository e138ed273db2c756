"""Arrow table → ``<row>`` XML, vectorised over columns (the hot path).

Each column becomes the pieces of its cells *after* the cell reference: literal strings and
Arrow arrays spliced into one element-wise join per row. :func:`render_rows` puts each cell's
reference (``r="B7"``) in front: Gnumeric, ExcelJS and Apache POI's streaming reader cannot place
a cell without it. A null in a column's pieces means "no cell": such columns are joined on their
own and their nulls dropped, so empty cells are left out rather than written ``<c/>``. The joined
array's value buffer *is* the XML, with no Python loop over rows. The costly text passes
(dropping XML-forbidden characters, escaping, cutting long texts) run only on columns whose bytes
a quick scan shows need them, which real data rarely does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_TEXT_UNITS = 32_767  # Excel's cell limit, counted in UTF-16 code units as Excel counts
_ILLEGAL_XML = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
# ECMA-376 Part 1 §22.4.2.4 (ST_Xstring): readers decode "_xHHHH_" in cell text; an underscore
# that would start one is itself written "_x005F_". Both cases of "x": SheetJS decodes "_X0042_".
_EXCEL_ESCAPE = r"_[xX][0-9A-Fa-f]{4}_"
_ESCAPE_START = re.compile(r"_(?=[xX][0-9A-Fa-f]{4}_)")  # lookahead: escapes may share underscores
_TEXT_CLOSE = "</t></is></c>"
STYLE_BOLD = 1
STYLE_DATE = 2

# Excel's 1900 date system: serial 1 is 1900-01-01 and serial 60 the fictitious 1900-02-29, so
# from 1900-03-01 on a serial is the day count from 1899-12-30, before it from 1899-12-31.
_EPOCH = date(1970, 1, 1)
_FIRST_DAY = (date(1900, 1, 1) - _EPOCH).days  # serial 1; earlier dates are written as text
_LEAP_BUG = (date(1900, 3, 1) - _EPOCH).days  # serial 61
_SERIAL_OFFSET = (_EPOCH - date(1899, 12, 30)).days  # 25,569

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
    offsets = np.frombuffer(values.buffers()[1], dtype=kind)[values.offset : values.offset + len(values) + 1]
    data = values.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    return offsets, raw[offsets[0] : offsets[-1]] if len(offsets) else raw[:0]


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
    if ord("_") in rare:  # texts that look like Excel's escapes are rare: Python for those alone
        looks = pc.fill_null(pc.match_substring_regex(values, _EXCEL_ESCAPE), False)
        if pc.any(looks).as_py():
            idx = np.flatnonzero(looks.to_numpy(zero_copy_only=False))
            escaped = pa.array([_ESCAPE_START.sub("_x005F_", values[int(i)].as_py()) for i in idx], pa.string())
            values = pc.replace_with_mask(values, looks, escaped)
    return values


def _text_open(style: int | None) -> str:
    s = f' s="{style}"' if style else ""
    return f'" t="inlineStr"{s}><is><t xml:space="preserve">'


def text_pieces(values: pa.Array, style: int | None = None) -> list:
    """Inline-string cells for ``values`` (after the reference); null or empty texts: no cell."""
    values = values.cast(pa.string()) if pa.types.is_large_string(values.type) else values
    rare = _rare_bytes(values)
    text = _escape(clean_text(values, rare), rare)
    empty = pc.equal(pc.binary_length(text), 0)
    if pc.any(empty).as_py():
        text = pc.if_else(empty, None, text)
    return [_text_open(style), text, _TEXT_CLOSE]


def number_pieces(values: pa.Array, style: int | None = None) -> list:
    s = f' s="{style}"' if style else ""
    return [f'"{s}><v>', pc.cast(values, pa.string()), "</v></c>"]


def date_pieces(values: pa.Array, text_format: str = "dd/mm/yyyy") -> list:
    """Dates as Excel 1900-system serials with the date style (real date cells); a date Excel
    cannot show (before 1900) as text in ``text_format`` (``dd``, ``mm`` and ``yyyy``)."""
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    days = pc.fill_null(pc.cast(values, pa.int32()), _LEAP_BUG).to_numpy().astype(np.int64)
    pieces = number_pieces(pa.array(days + _SERIAL_OFFSET - (days < _LEAP_BUG), mask=~valid), STYLE_DATE)
    early = valid & (days < _FIRST_DAY)
    if not early.any():
        return pieces
    shown = pa.array([_shown(_EPOCH + timedelta(days=int(d)), text_format) for d in days[early]], pa.string())
    return [pc.replace_with_mask(_joined(pieces), pa.array(early), _joined(text_pieces(shown)))]


def _shown(day: date, text_format: str) -> str:
    return (
        text_format.replace("yyyy", f"{day.year:04d}").replace("mm", f"{day.month:02d}").replace("dd", f"{day.day:02d}")
    )


@dataclass(frozen=True)
class Dates:
    """A date column whose dates before 1900 (which Excel cannot show as dates) are written as
    text in ``text_format``: the same format the date cells are shown in."""

    key: str  # a date column of the table
    text_format: str = "dd/mm/yyyy"


@dataclass(frozen=True)
class Link:
    """A text column spelled out from literal text around an integer column's digits (the
    course URLs): rendered as pieces around those digits, so its strings are never built,
    shipped to a render task or scanned."""

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


Column = str | Link | Dates  # a sheet column: a table column by name, a link built from one, or dates


def link_pieces(link: Link, table: pa.Table) -> list:
    """Cells of ``link``: the literals cleaned and escaped once, the key's digits spliced between
    them. Where splicing could differ from the plain text path (null keys, an Excel escape that
    digits could complete, a text near Excel's limit, an empty text) the built strings take that
    path."""
    key = table[link.key].combine_chunks()
    if not pa.types.is_integer(key.type):
        raise TypeError(f"a link needs an integer key column, not {key.type}")
    literal = "".join(link.parts)
    units = len(literal.encode("utf-16-le")) // 2 + 20 * (len(link.parts) - 1)  # ≤ 20 digits per key
    if key.null_count or len(link.parts) < 2 or "_x" in literal.lower() or units > MAX_TEXT_UNITS:
        return text_pieces(link.values(table))
    parts = pa.array(list(link.parts), pa.string())
    rare = _rare_bytes(parts)
    escaped = _escape(clean_text(parts, rare), rare).to_pylist()
    pieces = _spliced(escaped, key)
    pieces[0], pieces[-1] = _text_open(None) + pieces[0], pieces[-1] + _TEXT_CLOSE
    return pieces


def dictionary_pieces(column: pa.DictionaryArray) -> list:
    """Cells of a dictionary-encoded column: each distinct value rendered once, then taken."""
    return [pc.take(_joined(pieces_for(column.dictionary)), column.indices)]


def pieces_for(column: pa.Array) -> list:
    """A column's cells after their references: literals and arrays to splice (null: no cell)."""
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


def _joined(pieces: list) -> pa.Array:
    """Pieces as one array of finished strings."""
    if len(pieces) == 1 and not isinstance(pieces[0], str):
        return pieces[0]
    return pc.binary_join_element_wise(*pieces, "")


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _cells(letter: str, numbers: pa.Array, pieces: list) -> list:
    """A column's cells with their references; a column with "no cell" rows is joined alone
    and those rows dropped (the join yields null wherever a piece is null)."""
    pieces = [f'<c r="{letter}', numbers, *pieces]
    if any(not isinstance(p, str) and p.null_count for p in pieces):
        return [pc.fill_null(pc.binary_join_element_wise(*pieces, ""), "")]
    return pieces


def render_rows(table: pa.Table, first_row: int, columns: Sequence[Column] | None = None) -> memoryview:
    """The ``<row>`` elements for ``table``, numbered from ``first_row`` (1-based sheet row);
    ``columns``: the sheet's columns in order (default: the table's)."""
    n = table.num_rows
    if n == 0:
        return memoryview(b"")
    numbers = pc.cast(pa.array(np.arange(first_row, first_row + n, dtype=np.int64)), pa.string())
    pieces: list = ['<row r="', numbers, '">']
    for index, column in enumerate(columns or table.column_names):
        if isinstance(column, Link):
            cells = link_pieces(column, table)
        elif isinstance(column, Dates):
            cells = date_pieces(table[column.key].combine_chunks(), column.text_format)
        else:
            cells = pieces_for(table[column].combine_chunks())
        pieces += _cells(column_letter(index), numbers, cells)
    pieces.append("</row>")
    rows = pc.binary_join_element_wise(*_merge_literals(pieces), "")
    return memoryview(_string_buffers(rows)[1])  # the joined rows, end to end, not copied


def header_row(headers: list[str]) -> bytes:
    """Row 1: bold inline strings."""
    open_, text, close = text_pieces(pa.array(headers, pa.string()), STYLE_BOLD)
    cells = "".join(f'<c r="{column_letter(i)}1{open_}{t}{close}' for i, t in enumerate(text.to_pylist()))
    return f'<row r="1">{cells}</row>'.encode()


def _merge_literals(pieces: list) -> list:
    """Adjacent literal strings as one argument: fewer inputs for the join kernel."""
    merged: list = []
    for p in pieces:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return merged
