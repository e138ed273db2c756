"""The two Python readers, in process: python-calamine (Rust) and openpyxl (read-only mode)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import openpyxl
from python_calamine import CalamineWorkbook

from tests.support.readers.sheets import Cell, Row, Sheets, number, trimmed


def _cell(value: object) -> Cell:
    if isinstance(value, datetime):  # a date cell: a datetime at midnight, in both libraries
        return value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, float):
        return number(value)
    if value == "":  # calamine's empty cell
        return None
    assert value is None or isinstance(value, int | str | date), f"unexpected cell {value!r}"
    return value


def read_calamine(path: Path) -> Sheets:
    workbook = CalamineWorkbook.from_path(str(path))

    def rows(name: str) -> Iterator[Row]:
        for row in workbook.get_sheet_by_name(name).iter_rows():
            yield trimmed([_cell(v) for v in row])

    return {name: rows(name) for name in workbook.sheet_names}


def read_openpyxl(path: Path) -> Sheets:
    """openpyxl as a user gets it: strings as they are stored (no ``_xHHHH_`` decoding)."""
    workbook = openpyxl.load_workbook(path, read_only=True)

    def rows(name: str) -> Iterator[Row]:
        for row in workbook[name].iter_rows(values_only=True):
            yield trimmed([_cell(v) for v in row])

    return {name: rows(name) for name in workbook.sheetnames}
