"""The sheet writer under stress: generated tables with arbitrary text read back exactly (after
the SPEC's rules) in openpyxl and python-calamine (every other reader: test_reader_matrix.py);
equal bytes however many chunks render at once."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pyarrow as pa
import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.report.catalog import HEADERS, SHEET_SCHEMA
from actors.report.merge import merge_xlsx
from actors.report.partition import SHEET_DATA_ROWS, plan_chunks
from actors.report.render import RayRenderer, render_here, render_serially, table_chunks
from actors.report.xlsx.rows import Link, render_rows
from actors.report.xlsx.sheet import longest_values
from actors.runtime.memory import ANON_BUDGET, private_bytes, trim_private
from tests.support.data import cell_text, shown_date
from tests.support.workbook import read_both, read_calamine

texts = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),  # any code point, controls included
    st.sampled_from(
        [
            "=SUM(1)",
            "=1+1",
            "+A1",
            "-2",
            "@x",
            "_x0041_",
            "a_x00e9_b_x",
            "&amp;",
            "]]>",
            "\r\n",
            " lead",
            "trail ",
            "\t",
            "😀" * 3,
            "",
            "1,5",
            "00123",
        ]
    ),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "😀", "\x01"]), st.integers(30_000, 40_000)),
)
counts = st.integers(min_value=0, max_value=2**53)
dates = st.one_of(
    st.none(),
    st.dates(min_value=date(1800, 1, 1), max_value=date(9999, 12, 31)),
    st.dates(min_value=date(1899, 12, 25), max_value=date(1900, 3, 5)),
)  # Excel's 1900 quirk


@st.composite
def report_tables(draw):
    n = draw(st.integers(min_value=0, max_value=12))
    col = lambda s: [draw(s) for _ in range(n)]  # noqa: E731
    schools = sorted(col(st.one_of(st.none(), st.sampled_from(["A", "B", "Ç"]))), key=lambda s: (s is None, s or ""))
    return pa.table(
        {
            "id": col(st.integers(1, 2**63 - 1)),
            "title": col(texts),
            "student_url": col(texts),
            "status": col(st.sampled_from(["Publicado", "Rascunho"])),
            "admin_url": col(texts),
            "views": col(counts),
            "enrollments": col(counts),
            "completions": col(counts),
            "published": col(dates),
            "school": schools,
        },
        schema=SHEET_SCHEMA,
    )


def write(table: pa.Table, path, chunk_rows=3, sheet_rows=SHEET_DATA_ROWS, render=render_serially, columns=None):
    columns = columns or table.column_names
    plan = plan_chunks(table["school"], chunk_rows, sheet_rows)
    partitions, rows = table_chunks(table, plan)
    parts = render(partitions, plan, rows, columns, lambda done: None)
    merge_xlsx(path, longest_values(table), HEADERS, plan, parts, sheet_rows, columns)
    return path


def render_on(renderer: RayRenderer, table: pa.Table, plan) -> list:
    partitions, rows = table_chunks(table, plan)
    return renderer.render(partitions, plan, rows, table.column_names, lambda done: None)


def expected(table: pa.Table) -> list[list]:
    rows = []
    for r in table.to_pylist():
        values = list(r.values())
        rows.append(
            [cell_text(v) if isinstance(v, str) else shown_date(v) if isinstance(v, date) else v for v in values]
        )
    return rows


def as_numbers(rows):
    # Readers give floats: ids and counts beyond 2**53 are not exact in a spreadsheet either.
    return [[float(v) if isinstance(v, int) else v for v in r] for r in rows]


@given(table=report_tables())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_any_table_reads_back_exactly(table, tmp_path_factory):
    path = write(table, tmp_path_factory.mktemp("prop") / "t.xlsx")
    sheets = read_both(path)
    assert list(sheets) == ["Catálogo"]
    rows = sheets["Catálogo"]
    assert rows[0] == HEADERS
    got = [r + [None] * (10 - len(r)) for r in rows[1:]]
    assert as_numbers(got) == as_numbers(expected(table))


def sample_table(rows: int) -> pa.Table:
    schools = [None if i % 7 == 0 else f"Escola {i // 997:03d}" for i in range(rows)]
    schools.sort(key=lambda s: (s is None, s or ""))
    base = date(2020, 1, 1)
    return pa.table(
        {
            "id": list(range(1, rows + 1)),
            "title": [f"Curso {i} — ação & <teste> =SUM({i})" for i in range(rows)],
            "student_url": [f"https://demo.lxp/course/{i}" for i in range(rows)],
            "status": ["Publicado" if i % 3 else "Rascunho" for i in range(rows)],
            "admin_url": [f"https://demo.lxp/admin/courses/{i}/edit" for i in range(rows)],
            "views": [i * 7 % 1000 for i in range(rows)],
            "enrollments": [i % 50 for i in range(rows)],
            "completions": [i % 9 for i in range(rows)],
            "published": [None if i % 5 == 0 else base + timedelta(days=i % 2000) for i in range(rows)],
            "school": schools,
        },
        schema=SHEET_SCHEMA,
    )


@given(
    parts=st.lists(texts.filter(lambda t: t is not None), min_size=1, max_size=4),
    ids=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=6),
)
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_a_link_renders_as_the_strings_it_stands_for(parts, ids):
    link = Link(tuple(parts), "id")
    table = pa.table({"id": pa.array(ids, pa.int64())})
    spelled = pa.table({"url": link.values(table)})
    assert bytes(render_rows(table, 2, [link])) == bytes(render_rows(spelled, 2))


LINKS = [Link(("https://demo.lxp/course/", ""), "id"), Link(("https://demo.lxp/admin/courses/", "/edit?a=1&b=2"), "id")]


def test_bytes_do_not_depend_on_the_number_of_chunks_rendering_at_once(ray_session, tmp_path):
    """Same bytes with 1, 2 and 5 chunks rendering at once, serially, and with the URL columns
    spelled out."""
    cells = sample_table(20_000)
    cells = cells.set_column(2, "student_url", LINKS[0].values(cells))
    cells = cells.set_column(4, "admin_url", LINKS[1].values(cells))
    table = cells.drop_columns(["student_url", "admin_url"])
    columns = [
        "id",
        "title",
        LINKS[0],
        "status",
        LINKS[1],
        "views",
        "enrollments",
        "completions",
        "published",
        "school",
    ]
    digests = set()
    for in_flight in (1, 2, 5):
        renderer = RayRenderer(in_flight, cpus_per_chunk=0.5)  # five fit on the 4-CPU test cluster
        path = write(table, tmp_path / f"w{in_flight}.xlsx", chunk_rows=1500, render=renderer.render, columns=columns)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    serial = write(table, tmp_path / "serial.xlsx", chunk_rows=1500, columns=columns)
    spelled = write(cells, tmp_path / "spelled.xlsx", chunk_rows=1500)
    digests |= {hashlib.sha256(f.read_bytes()).hexdigest() for f in (serial, spelled)}
    assert len(digests) == 1
    assert len(read_calamine(serial)["Catálogo"]) == 20_001


@pytest.mark.slow
def test_a_full_sheet_continues_on_a_second_one(tmp_path):
    rows = SHEET_DATA_ROWS + 5
    table = pa.table(
        {
            "id": pa.array(range(1, rows + 1), pa.int64()),
            "title": pa.array(["t"] * rows),
            "student_url": pa.array(["u"] * rows),
            "status": pa.array(["Rascunho"] * rows),
            "admin_url": pa.array(["a"] * rows),
            "views": pa.array([0] * rows, pa.int64()),
            "enrollments": pa.array([0] * rows, pa.int64()),
            "completions": pa.array([0] * rows, pa.int64()),
            "published": pa.nulls(rows, pa.date32()),
            "school": pa.array(["S"] * rows),
        },
        schema=SHEET_SCHEMA,
    )
    path = write(table, tmp_path / "big.xlsx", chunk_rows=200_000)
    sheets = read_calamine(path)
    assert list(sheets) == ["Catálogo", "Catálogo (2)"]
    assert len(sheets["Catálogo"]) == 1_048_576 and sheets["Catálogo"][-1][0] == SHEET_DATA_ROWS
    assert sheets["Catálogo (2)"][0] == HEADERS and [r[0] for r in sheets["Catálogo (2)"][1:]] == list(
        range(SHEET_DATA_ROWS + 1, rows + 1)
    )


def test_a_render_worker_does_not_keep_the_chunks_it_read(ray_session):
    """After a job the worker process holds neither the chunks' object-store pages nor more
    private memory than its budget: it does not grow with each report it renders (actors/runtime/memory.py).
    The chunks are rendered by :func:`render_here`, what a render task runs, in one process that
    reports its memory afterwards (a task's process cannot be chosen). Chunks of the service's
    size: a worker that kept what the allocator holds after them would be at ~150 MB."""
    table = sample_table(150_000)
    plan = plan_chunks(table["school"], 50_000)

    @ray_session.remote(num_cpus=0.5)
    class Probe:
        def render(self, refs: list, rows: list, first_rows: list[int], columns: list):
            partitions = ray.get(refs)  # mapped from the object store, as a task's arguments are
            return [
                render_here(r, first, columns, *(partitions[p] for p in r.partitions))
                for r, first in zip(rows, first_rows, strict=True)
            ]

        def status(self):
            with open("/proc/self/status") as fh:
                return {
                    k: int(v.split()[0]) * 1024
                    for k, v in (line.split(":", 1) for line in fh)
                    if k in ("RssShmem", "RssAnon")
                }

    def render_in(probe, rendered: pa.Table, chunks) -> list:
        partitions, rows = table_chunks(rendered, chunks)
        refs = [ray_session.put(p) for p in partitions]  # inside a list they reach the probe unresolved
        return ray_session.get(probe.render.remote(refs, rows, [c.first_row for c in chunks], rendered.column_names))

    probe = Probe.remote()
    try:
        warm = table.slice(0, 100)
        render_in(probe, warm, plan_chunks(warm["school"], 50))  # imports, warm-up
        before = ray_session.get(probe.status.remote())
        parts = render_in(probe, table, plan)
        after = ray_session.get(probe.status.remote())
    finally:
        ray_session.kill(probe)
    read = table.nbytes  # what the chunks weighed in the object store
    shipped = sum(len(p.data) for p in parts)  # the worker's own results, written there by it
    assert after["RssShmem"] - before["RssShmem"] < shipped + read / 4, (before, after, read, shipped)
    # The budget is checked when a chunk is done; handing the part back allocates a little after
    # (measured: 0.25 MB past the budget).
    assert after["RssAnon"] <= ANON_BUDGET + (2 << 20), (before, after)


def test_trimming_hands_freed_memory_back_past_the_budget():
    import numpy as np

    buffers = [pa.allocate_buffer(8 << 20) for _ in range(25)]  # 200 MB through Arrow's pool
    for b in buffers:
        np.frombuffer(b, dtype=np.uint8)[::4096] = 1  # touched: resident
    held = private_bytes()
    del buffers
    trim_private(budget=held)  # under its budget: kept for the next chunk
    kept = private_bytes()
    trim_private(budget=0)
    assert private_bytes() < kept - (100 << 20) <= held, (held, kept, private_bytes())


def test_a_date_excel_cannot_show_is_text_in_the_columns_format():
    from actors.report.xlsx.rows import Dates, render_rows

    table = pa.table({"d": pa.array([date(1850, 3, 4), date(2020, 1, 2)], pa.date32())})
    assert b"04/03/1850" in bytes(render_rows(table, 2, [Dates("d")]))
    iso = bytes(render_rows(table, 2, [Dates("d", "yyyy-mm-dd")]))
    assert b"1850-03-04" in iso and b"<v>43832</v>" in iso  # 2020-01-02 stays a date serial
