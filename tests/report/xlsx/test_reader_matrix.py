"""The reader matrix (SPEC §5): the same two files, produced by the product's own code, read by
every spreadsheet reader we can run here, each held cell for cell to the rows SPEC §5 asks for,
computed independently in tests/support/data.py. Where a reader itself departs from ECMA-376, the test
expects exactly its known reading (tests/support/readers/deviations.py) instead of skipping it."""

from __future__ import annotations

from datetime import date
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from actors.config.settings import load_settings
from actors.report.catalog import HEADERS, REPORT_SCHEMA
from actors.report.merge import merge_xlsx
from actors.report.partition import SHEET_DATA_ROWS, plan_chunks
from actors.report.pipeline import produce_report
from actors.report.render import render_serially, table_chunks
from actors.report.xlsx.rows import Link
from actors.report.xlsx.sheet import longest_values
from actors.warehouse import CatalogQuery, open_warehouse
from tests.conftest import ADMIN, STUDENT, base_settings
from tests.support.data import (
    BIG_ADMIN,
    BIG_DATE_SPAN,
    BIG_DATE_STEP,
    BIG_FIRST_DATE,
    BIG_SCHOOLS,
    BIG_STUDENT,
    BIG_WORDS,
    EDGE,
    P_END,
    P_START,
    big_sheets,
    expected_report,
    write_warehouse,
)
from tests.support.readers import deviations
from tests.support.readers.matrix import READERS, check, check_all, reader

BIG_ROWS = SHEET_DATA_ROWS + 1_000  # a full first sheet, and a second one
BIG_WORKERS = 2  # the CI machine's cores: a third reader at once only adds memory
# Slowest first (CPU seconds measured: openpyxl 300, gnumeric-values 111, libreoffice 101, exceljs-stream 91,
# poi-stream 91, calamine 38, exceljs 12 and sheetjs 6 to fail), so the longest runs overlap the rest.
BIG_ORDER = [
    "openpyxl",
    "gnumeric-values",
    "libreoffice",
    "exceljs-stream",
    "poi-stream",
    "calamine",
    "exceljs",
    "sheetjs",
]
NOT_RUN_ON_BIG = {
    **{limit.reader: limit.summary for limit in deviations.LIMITS if limit.error is None},
    "gnumeric": "showing 10.5 million cells as formatted text costs Gnumeric ~8 CPU-minutes, 6x its raw "
    "values; gnumeric-values reads the big file (the edge-case file checks what Gnumeric shows)",
    "openpyxl": "a pure-Python reader: 300 CPU-seconds for the big file, as much as the other five readers "
    "together, which read it (calamine, LibreOffice, Gnumeric, POI streaming, ExcelJS streaming); openpyxl "
    "reads the edge-case file and every job's file in the content tests",
}


def _present(name: str) -> None:
    reason = reader(name).missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def edge_file(tmp_path_factory):
    """The report of the edge-case warehouse, through the product's pipeline (query, report
    table, chunk plan, render, merge), in chunks of 4 rows."""
    tmp = tmp_path_factory.mktemp("edge")
    settings = load_settings(**base_settings(tmp, write_warehouse(tmp / "edge.duckdb", EDGE)))
    warehouse = open_warehouse(settings.warehouse_url)
    try:
        query = CatalogQuery.for_dates(1, P_START, P_END, settings.zone)
        produce_report(warehouse, query, subdomain="demo", options=settings.report, out=tmp / "edge.xlsx")
    finally:
        warehouse.close()
    return tmp / "edge.xlsx"


def edge_sheets() -> dict[str, list[list]]:
    rows = expected_report(1, P_START, P_END, subdomain="demo", student=STUDENT, admin=ADMIN, data=EDGE)
    return {"Catálogo": [HEADERS, *rows]}


def big_table(n: int) -> tuple[pa.Table, list]:
    """The table ``tests.support.data.big_rows`` describes, built with Arrow as the product's report
    table (REPORT_SCHEMA, URL columns as links spelled out from the id)."""
    i = np.arange(n, dtype=np.int64)
    ids = pa.array(i + 1)
    title = pc.binary_join_element_wise(
        "Curso ",
        pc.utf8_lpad(pc.cast(ids, pa.string()), 7, "0"),
        " — ",
        pc.take(pa.array(BIG_WORDS), pa.array(i % len(BIG_WORDS))),
        "",
    )
    status = pc.take(pa.array(["Rascunho", "Publicado"]), pa.array((i % 3 != 0).astype(np.int8)))
    days = (BIG_FIRST_DATE - date(1970, 1, 1)).days + i * BIG_DATE_STEP % BIG_DATE_SPAN
    published = pa.array(days.astype(np.int32), pa.date32(), mask=i % 5 == 0)
    group = i * (len(BIG_SCHOOLS) + 1) // n
    school = pa.DictionaryArray.from_arrays(
        pa.array(group.astype(np.int32), mask=group == len(BIG_SCHOOLS)), pa.array(BIG_SCHOOLS)
    )
    table = pa.Table.from_arrays(
        [ids, title, status, pa.array(i % 1000), pa.array(i % 97), pa.array(i % 13), published, school],
        schema=REPORT_SCHEMA,
    )
    link = lambda template: Link(tuple(template.split("{}")), "id")  # noqa: E731
    columns = [
        "id",
        "title",
        link(BIG_STUDENT),
        "status",
        link(BIG_ADMIN),
        "views",
        "enrollments",
        "completions",
        "published",
        "school",
    ]
    return table, columns


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """More rows than one sheet holds, rendered chunk by chunk and merged as a job does."""
    table, columns = big_table(BIG_ROWS)
    plan = plan_chunks(table["school"], 50_000)
    partitions, rows = table_chunks(table, plan)
    parts = render_serially(partitions, plan, rows, columns, lambda done: None)
    path = tmp_path_factory.mktemp("big") / "big.xlsx"
    merge_xlsx(path, longest_values(table), HEADERS, plan, parts, SHEET_DATA_ROWS, columns)
    return path


@pytest.mark.parametrize("name", [r.name for r in READERS])
def test_the_edge_case_file_reads_as_specified(name, edge_file):
    _present(name)
    outcome = check(name, edge_file, edge_sheets)
    assert outcome.agrees, (outcome.error, outcome.described)
    assert outcome.rows == len(edge_sheets()["Catálogo"])


@pytest.mark.parametrize(
    "deviation", deviations.DEVIATIONS, ids=lambda d: "+".join(d.readers) + ":" + d.clause.split()[3].lstrip("§")
)
def test_the_edge_case_file_shows_each_known_deviation(deviation):
    """Each deviation the matrix allows is one the edge-case file exercises: with the readers
    held to exactly these readings, a reader that stops deviating fails the matrix."""
    cells = [cell for row in edge_sheets()["Catálogo"] for cell in row]
    assert any(deviation.applies(c) and deviation.reads(c) != c for c in cells)


@pytest.fixture(scope="module")
def big_outcomes(big_file):
    order = BIG_ORDER + [r.name for r in READERS if r.name not in BIG_ORDER]  # a reader added later: last
    names = [n for n in order if reader(n).missing() is None and n not in NOT_RUN_ON_BIG]
    outcomes = check_all(names, big_file, partial(big_sheets, BIG_ROWS), BIG_WORKERS, deviate=False)
    print(
        f"\nreader matrix, big file ({BIG_ROWS:,} rows), seconds wall/CPU: "
        + ", ".join(f"{o.reader} {o.seconds:.0f}/{o.cpu_seconds:.0f}" for o in outcomes.values())
    )
    return outcomes


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~6 minutes on two idle cores; far more on a busy machine
@pytest.mark.parametrize("name", [r.name for r in READERS])
def test_the_big_file_reads_as_specified(name, big_outcomes):
    """Every row of both sheets, cell for cell. The big file holds no cell any deviation applies
    to (dates from 1900-03-01 on, texts without escapes or CRs), so every reader that can open
    it must read it exactly but for its known corruptions; those that cannot must fail exactly
    as known."""
    _present(name)
    if name in NOT_RUN_ON_BIG:
        pytest.skip(f"not run on the big file: {NOT_RUN_ON_BIG[name]}")
    outcome = big_outcomes[name]
    limit = next((limit for limit in deviations.LIMITS if limit.reader == name), None)
    if limit:
        assert outcome.error == limit.error, outcome
        return
    assert outcome.agrees, (outcome.error, outcome.mismatches, outcome.described)
    assert outcome.rows == BIG_ROWS + 2
    # Each known corruption still shows (a million rows of accented text always straddle chunks).
    assert (outcome.explained > 0) == any(c.reader == name for c in deviations.CORRUPTIONS)
