"""Read a produced .xlsx back with openpyxl and with python-calamine, normalised to plain
Python values (int, str, date, None) so both can be compared with the expected rows."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import openpyxl
from python_calamine import CalamineWorkbook


def _norm(v):
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if v == "":
        return None
    return v


_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def ecma_unescape(value):
    """Decode ECMA-376 Part 1 §22.4.2.4 ``_xHHHH_`` escapes, which openpyxl leaves undecoded in
    inline strings (it reads ``_x005F_x0041_`` where Excel, calamine and POI read ``_x0041_``)."""
    return _ESCAPED.sub(lambda m: chr(int(m[1], 16)), value) if isinstance(value, str) else value


def read_openpyxl(path: Path) -> dict[str, list[list]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return {
            ws.title: [[_norm(ecma_unescape(v)) for v in row] for row in ws.iter_rows(values_only=True)] for ws in wb
        }
    finally:
        wb.close()


def read_calamine(path: Path) -> dict[str, list[list]]:
    wb = CalamineWorkbook.from_path(str(path))
    return {
        name: [[_norm(v) for v in row] for row in wb.get_sheet_by_name(name).to_python()] for name in wb.sheet_names
    }


def read_both(path: Path) -> dict[str, list[list]]:
    """The sheets as both readers see them; fails if the two readers disagree."""
    a, b = read_openpyxl(path), read_calamine(path)
    assert list(a) == list(b)
    for name in a:
        width = max(len(r) for r in a[name] + b[name])

        # Cells hold doubles: openpyxl keeps big integers exact, calamine gives the double.
        def same(rows, width=width):
            return [[float(v) if isinstance(v, int) else v for v in r] + [None] * (width - len(r)) for r in rows]

        assert same(a[name]) == same(b[name]), f"openpyxl and calamine disagree on sheet {name}"
    return a
