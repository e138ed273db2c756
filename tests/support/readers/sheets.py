"""The one form every reader returns, whatever its own cell model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

Cell = None | int | float | str | date  # int for integral numbers; an empty cell is None
Row = list[Cell]
# Sheet name → its rows from sheet row 1, in order, each from column A with trailing empty cells
# trimmed. A reader may hand rows over lazily (a generator, consumed once, in sheet order), so a
# million-row sheet is compared without being held in memory.
Sheets = Mapping[str, Iterable[Row]]


def trimmed(row: Iterable[Cell]) -> Row:
    """``row`` as a list without its trailing empty cells (a list that has none is returned as is)."""
    cells = row if isinstance(row, list) else list(row)
    if cells and cells[-1] is None:
        cells = cells[:-1]
        while cells and cells[-1] is None:
            cells.pop()
    return cells


def number(value: float) -> int | float:
    """A spreadsheet number (always a double) as an int when it is integral."""
    return int(value) if value.is_integer() else value
