"""The reader matrix: every reader as one entry of ``READERS``, and how a reading is held to the
rows SPEC §5 asks for (streamed, so a million-row sheet is never held whole)."""

from __future__ import annotations

import itertools
import multiprocessing
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tests.support.readers import deviations, poi
from tests.support.readers.exported import (
    as_serials,
    program_missing,
    read_gnumeric,
    read_gnumeric_values,
    read_libreoffice,
)
from tests.support.readers.nodejs import node_missing, read_with
from tests.support.readers.python_libs import read_calamine, read_openpyxl
from tests.support.readers.sheets import Cell, Row, Sheets, trimmed


def _present() -> str | None:
    return None


def _as_is(row: Row) -> Row:
    return row


@dataclass(frozen=True)
class Reader:
    name: str
    read: Callable[[Path], Sheets]
    missing: Callable[[], str | None] = _present  # why it cannot run on this machine; None if it can
    shows: Callable[[Row], Row] = _as_is  # a row of SPEC §5 values as this reader presents them


READERS: list[Reader] = [
    Reader("calamine", read_calamine),
    Reader("openpyxl", read_openpyxl),
    Reader("libreoffice", read_libreoffice, program_missing("soffice", "libreoffice-calc-nogui")),
    Reader("gnumeric", read_gnumeric, program_missing("ssconvert", "gnumeric")),
    Reader("gnumeric-values", read_gnumeric_values, program_missing("ssconvert", "gnumeric"), as_serials),
    Reader("exceljs", read_with("exceljs"), node_missing),
    Reader("exceljs-stream", read_with("exceljs-stream"), node_missing),
    Reader("sheetjs", read_with("sheetjs"), node_missing),
    Reader("poi", partial(poi.sheets, streaming=False), poi.setup),  # XSSFWorkbook
    Reader("poi-stream", partial(poi.sheets, streaming=True), poi.setup),  # XSSFReader + XSSFSheetXMLHandler
]

Expected = Mapping[str, Iterable[Row]]  # the sheets SPEC §5 asks for, in the readers' form
MAX_DESCRIBED = 10


def reader(name: str) -> Reader:
    return next(r for r in READERS if r.name == name)


@dataclass
class Outcome:
    reader: str
    seconds: float = 0.0  # wall clock, reading and comparing
    cpu_seconds: float = 0.0  # CPU of this process and the programs it ran: comparable on a busy machine
    rows: int = 0  # rows compared, headers included
    mismatches: int = 0  # rows that differ (beyond what ``explained`` covers)
    explained: int = 0  # rows that differ only in cells a known corruption of the reader accounts for
    described: list[str] = field(default_factory=list)  # the first few, cell by cell
    error: str | None = None  # the reader failed: its message

    @property
    def agrees(self) -> bool:
        return self.error is None and self.mismatches == 0


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} chars)"


def compare(
    actual: Sheets,
    expected: Expected,
    as_read: Callable[[Row], Row],
    explained: Callable[[Cell, Cell], bool],
    outcome: Outcome,
) -> None:
    """Walk both sheet by sheet, row by row, counting into ``outcome`` the rows where the reading
    differs from ``as_read(expected row)``, apart from cells ``explained(read, asked)`` accounts for."""
    if list(actual) != list(expected):
        outcome.mismatches += 1
        outcome.described.append(f"sheets {list(actual)} instead of {list(expected)}")
    for name, want_rows in expected.items():
        got_rows = actual.get(name, ())
        for number, (got, want) in enumerate(itertools.zip_longest(got_rows, want_rows), start=1):
            outcome.rows += 1
            want = as_read(trimmed(want)) if want is not None else None
            if got == want:
                continue
            if got is None or want is None:
                outcome.mismatches += 1
                outcome.described.append(f"{name}!{number}: row {'missing' if got is None else 'extra'}")
                continue
            cells = [(i, g, w) for i, (g, w) in enumerate(itertools.zip_longest(got, want)) if g != w]
            if all(explained(g, w) for _, g, w in cells):
                outcome.explained += 1
                continue
            outcome.mismatches += 1
            if len(outcome.described) < MAX_DESCRIBED:
                outcome.described.append(
                    f"{name}!{number}: "
                    + "; ".join(f"col {i + 1}: {_short(g)} instead of {_short(w)}" for i, g, w in cells)
                )


def check(name: str, path: Path, expected: Callable[[], Expected], deviate: bool = True) -> Outcome:
    """Read ``path`` with reader ``name`` and compare it with ``expected()``, as the reader shows
    it and, with ``deviate``, with its known deviations; timed, and a reader that fails gives its
    message rather than raising. Known corruptions are counted apart (``Outcome.explained``)."""
    outcome = Outcome(name)
    chosen = reader(name)

    def as_read(row: Row) -> Row:
        return chosen.shows(deviations.as_read(name, row) if deviate else row)

    start, cpu = time.perf_counter(), _cpu()
    try:
        compare(
            chosen.read(path), expected(), as_read, lambda got, want: deviations.explained(name, got, want), outcome
        )
    except Exception as error:
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.seconds, outcome.cpu_seconds = time.perf_counter() - start, _cpu() - cpu
    return outcome


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def check_all(
    names: list[str], path: Path, expected: Callable[[], Expected], workers: int, deviate: bool = True
) -> dict[str, Outcome]:
    """``check`` for each reader in its own process, ``workers`` at a time, in the given order
    (``expected`` must be picklable: processes are spawned, not forked from the test run)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {name: pool.submit(check, name, path, expected, deviate) for name in names}
        return {name: future.result() for name, future in futures.items()}
