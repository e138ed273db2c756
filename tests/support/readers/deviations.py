"""Where a reader itself gets the catalog file wrong, exactly as it does today: ``DEVIATIONS``
from ECMA-376, ``CORRUPTIONS`` (reader bugs that damage values where the data happens to fall)
and ``LIMITS`` (files a reader cannot open at all).

The reader matrix expects each reader's own reading (``reads``) wherever ``applies`` holds, and
checks that the edge-case file really shows every deviation listed here; it accepts a corrupted
cell only in its known form, and checks that the big file still shows each corruption; a reader
over a limit must fail with exactly its known error. A reader that changes, for better or worse,
fails the matrix until these lists (and the README written from them) say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from tests.support.readers.exported import displayed
from tests.support.readers.sheets import Cell

ECMA_DATES = "ECMA-376 Part 1 §18.17.4.1 (1900 date system: serial 60 is the fictitious 1900-02-29)"
ECMA_ESCAPES = (
    "ECMA-376 Part 1 §22.9.2.19 ST_Xstring and §22.4.2.4 bstr (`_xHHHH_` escapes; a literal "
    "`_xHHHH_` is stored as `_x005F_xHHHH_`)"
)
ECMA_TEXT = (
    "ECMA-376 Part 1 §18.4.12 t (Text), with XML 1.0 §2.11: a CR written as `&#13;` is part of the text, not a line end"
)

ONE_DAY = timedelta(days=1)
MARCH_1900 = date(1900, 3, 1)  # serial 61: from here on a plain day count agrees with Excel
_UNESCAPED = re.compile(r"_(?=[xX][0-9A-Fa-f]{4}_)")  # the underscores SPEC §5 escapes as _x005F_


@dataclass(frozen=True)
class Deviation:
    readers: tuple[str, ...]
    clause: str
    summary: str
    applies: Callable[[Cell], bool]  # to the value SPEC §5 asks for
    reads: Callable[[Cell], Cell]  # what the reader gives instead


def _before_march_1900(cell: Cell) -> bool:
    return isinstance(cell, date) and cell < MARCH_1900


def _escaped_text(cell: Cell) -> bool:
    return isinstance(cell, str) and _UNESCAPED.search(cell) is not None


def _as_stored(text: str) -> str:
    return _UNESCAPED.sub("_x005F_", text)


def _has_cr(cell: Cell) -> bool:
    return isinstance(cell, str) and "\r" in cell


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        ("openpyxl", "gnumeric", "gnumeric-values", "exceljs", "exceljs-stream"),
        ECMA_ESCAPES,
        "inline-string text is shown as stored: `_x0041_` (stored `_x005F_x0041_`) reads `_x005F_x0041_`",
        _escaped_text,
        _as_stored,
    ),
    Deviation(
        ("libreoffice",),
        ECMA_DATES,
        "dates before 1900-03-01 are one day early (no fictitious 1900-02-29): serial 1 shows 31/12/1899",
        _before_march_1900,
        lambda d: displayed(f"{d - ONE_DAY:%d/%m/%Y}"),
    ),  # shown, then read back
    Deviation(
        ("exceljs", "exceljs-stream"),
        ECMA_DATES,
        "dates before 1900-03-01 are one day early: excelToDate counts days from 1899-12-30",
        _before_march_1900,
        lambda d: d - ONE_DAY,
    ),
    Deviation(
        ("sheetjs",),
        ECMA_DATES,
        "with cellDates, dates before 1900-03-01 are one day early: numdate counts days from 1899-12-30 "
        "(its own formatter, SSF, shows them right)",
        _before_march_1900,
        lambda d: d - ONE_DAY,
    ),
    Deviation(
        ("libreoffice",),
        ECMA_TEXT,
        "a carriage return in a text (CR LF or CR alone) becomes a line feed",
        _has_cr,
        lambda s: s.replace("\r\n", "\n").replace("\r", "\n"),
    ),
)


@dataclass(frozen=True)
class Corruption:
    reader: str
    cause: str
    summary: str
    explains: Callable[[Cell, Cell], bool]  # (cell read, cell asked for): is the difference this bug?


def _split_characters(got: Cell, want: Cell) -> bool:
    """``got`` is ``want`` with some non-ASCII characters each replaced by one U+FFFD per piece
    its UTF-8 bytes were cut into."""
    if not isinstance(got, str) or not isinstance(want, str) or got == want:
        return False
    pattern = "".join(
        re.escape(c) if c.isascii() else f"(?:{re.escape(c)}|\ufffd{{1,{len(c.encode())}}})" for c in want
    )
    return re.fullmatch(pattern, got) is not None


CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption(
        "exceljs-stream",
        "ExcelJS 4.4 lib/utils/parse-sax.js decodes each inflated chunk (16 KiB) to text on its own "
        "(exceljs issues #2063, #2084, #2316; fixes #1665, #2081, #2894 not merged)",
        "a character whose UTF-8 bytes straddle a chunk boundary reads as U+FFFD, once per piece "
        "(where depends on the bytes: today 53 rows of the big file, 1 cell of the edge-case file)",
        _split_characters,
    ),
)


def explained(reader: str, got: Cell, want: Cell) -> bool:
    """Whether a known corruption of ``reader`` accounts for reading ``want`` as ``got``."""
    return any(c.explains(got, want) for c in CORRUPTIONS if c.reader == reader)


V8_STRING = "V8's longest string, 2**29 - 24 UTF-16 units (~512 MiB): no ECMA-376 limit"


@dataclass(frozen=True)
class Limit:
    reader: str
    clause: str
    summary: str
    error: str | None  # how it fails on the matrix's big file (``Outcome.error``); None: not run on it


LIMITS: tuple[Limit, ...] = (
    Limit(
        "exceljs",
        V8_STRING,
        "cannot open a sheet whose XML is longer: JSZip joins the whole part into one string "
        "(a full 1,048,575-row catalog sheet is ~665 MB); the streaming reader can",
        "RuntimeError: exceljs failed: RangeError: Invalid string length",
    ),
    Limit(
        "sheetjs",
        V8_STRING,
        "cannot open a sheet whose XML is longer: it decodes the whole part into one string "
        "(without WTF: true it silently leaves the sheet out)",
        "RuntimeError: sheetjs failed: Error: Cannot create a string longer than 0x1fffffe8 characters",
    ),
    Limit(
        "poi",
        "memory: no ECMA-376 limit",
        "XSSFWorkbook holds a sheet as XML beans, ~12 KB a row (1.2 GB resident for 100,000 rows): "
        "the big file would need ~13 GB, so the matrix reads it only with poi-stream",
        None,
    ),
)


def of(reader: str) -> list[Deviation]:
    return [d for d in DEVIATIONS if reader in d.readers]


def as_read(reader: str, cells: Iterable[Cell]) -> list[Cell]:
    """``cells`` as ``reader`` reads them, its deviations applied."""
    deviations = of(reader)
    out = []
    for cell in cells:
        for deviation in deviations:
            if deviation.applies(cell):
                cell = deviation.reads(cell)
        out.append(cell)
    return out
