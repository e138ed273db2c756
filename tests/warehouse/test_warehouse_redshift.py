"""RedshiftWarehouse against a real PostgreSQL, through the real redshift-connector driver.

One generated warehouse is loaded into both DuckDB and a fresh PostgreSQL database, and every
query must come back as the same Arrow tables from both backends. The driver reaches PostgreSQL
through :mod:`pg_shim`, which also counts FETCH round trips on the wire.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import redshift_connector

from actors.job.cancel import withdraw
from actors.job.consumer import JobRunner
from actors.job.ledger import Ledger
from actors.job.state import Status
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.report.fetch import fetch_here, fetch_on_ray, partition_queries
from actors.report.pipeline import produce_report
from actors.report.render import RayRenderer, render_serially
from actors.storage import open_storage
from actors.warehouse import CatalogQuery, CatalogRows, open_warehouse, packed
from actors.warehouse import demo as demo_data
from actors.warehouse.base import COURSES_SCHEMA, LINKS_SCHEMA, FetchInterrupted
from actors.warehouse.duckdb import DuckDBWarehouse
from actors.warehouse.packed import per_chunk
from actors.warehouse.redshift import RedshiftWarehouse, WarehouseConnectionError
from tests.support.jobs import accept
from tests.support.pg_shim import REDSHIFT_FUNCTIONS, PgShim

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
TABLES = ("schools", "courses", "course_schools", "course_views", "enrollments")
SIZES = dict(institutions=3, courses=2000, schools=40, views=30_000, enrollments=10_000)
UTC = ZoneInfo("UTC")

# Rows added to the generated data: SQL-shaped text must come back as plain data.
HOSTILE_TITLE = "x'); DROP TABLE courses; --"
HOSTILE_SCHOOL = "Escola '); DROP TABLE schools; --"
HOSTILE_COURSE_ID = SIZES["courses"] + 1
HOSTILE_SCHOOL_ID = SIZES["schools"] + 1
YEAR_2025 = CatalogQuery.for_dates(1, date(2025, 1, 1), date(2025, 12, 31), UTC)
# Courses whose text cannot ride in a packed chunk (actors/warehouse/packed.py), each with its
# status: they travel loose and must come back exactly as stored; and plain ones at the edges.
ODD_COURSES = {
    "separators": ("Unit\x1fand\x1erecord separators", "published"),
    "status-separator": ("Plain title", "pub\x1flished"),
    "record-separator": ("Rides packed: \x1e is plain text", "published"),
    "long": ("Ω𝄞" * 101, "published"),  # 606 bytes
    "at-the-limit": ("é" * 295 + "a", "published"),  # 591 + 9 bytes: packed
    "null-status": ("No status", None),
    "null-title": (None, "draft"),
    "empty-title": ("", "published"),
    "line-breaks": ('Line\nbreak, "quoted"\r\n', "published"),
    "carriage-return": ("A lone\rCR ends a CSV line too", "published"),
}
ODD_COURSE_IDS = {name: HOSTILE_COURSE_ID + 1 + i for i, name in enumerate(ODD_COURSES)}


def _psql(database: str, *commands: str) -> None:
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER]
    subprocess.run([*args, "-d", database, *(a for c in commands for a in ("-c", c))], check=True)


@pytest.fixture(scope="session")
def pg_server() -> None:
    """Skip, rather than fail, where no PostgreSQL (or psql) is around; CI provides both."""
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}: {exc}")


@pytest.fixture(scope="session")
def warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse plus one course and school with SQL-shaped names and a microsecond stamp."""
    path = demo_data.generate(tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb", **SIZES)
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schools VALUES (?, 1, ?)", [HOSTILE_SCHOOL_ID, HOSTILE_SCHOOL])
        con.execute(
            "INSERT INTO courses VALUES (?, 1, ?, 'published', ?, NULL)",
            [HOSTILE_COURSE_ID, HOSTILE_TITLE, datetime(2025, 3, 1, 12, 0, 0, 123456)],
        )
        con.execute("INSERT INTO course_schools VALUES (?, ?)", [HOSTILE_COURSE_ID, HOSTILE_SCHOOL_ID])
        con.execute("INSERT INTO course_views VALUES (?, 7, '2025-03-02 08:00:00')", [HOSTILE_COURSE_ID])
        for name, (title, status) in ODD_COURSES.items():
            course = ODD_COURSE_IDS[name]
            con.execute("INSERT INTO courses VALUES (?, 1, ?, ?, NULL, NULL)", [course, title, status])
            con.execute("INSERT INTO course_schools VALUES (?, 3)", [course])
    return path


@pytest.fixture(scope="session")
def pg_database(pg_server: None, warehouse_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database holding the same rows as ``warehouse_file`` (DuckDB → CSV → psql \\copy)."""
    name = f"catalog_test_{secrets.token_hex(4)}"
    csv_dir = tmp_path_factory.mktemp("csv")
    with duckdb.connect(str(warehouse_file), read_only=True) as con:
        for table in TABLES:
            con.execute(f"COPY {table} TO '{csv_dir / table}.csv' (HEADER)")
    _psql("postgres", f"CREATE DATABASE {name}")
    try:
        copies = (f"\\copy {t} FROM '{csv_dir / t}.csv' CSV HEADER" for t in TABLES)
        # ANALYZE: without statistics the planner picks nested loops and each query takes seconds.
        _psql(name, demo_data.SCHEMA, REDSHIFT_FUNCTIONS, *copies, "ANALYZE")
        yield name
    finally:
        _psql("postgres", f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def shim(pg_server: None) -> Iterator[PgShim]:
    shim = PgShim(PG_HOST, PG_PORT)
    shim.start()
    yield shim
    shim.stop()


def _url(shim: PgShim, database: str, options: str = "ssl=false") -> str:
    return f"redshift://{PG_USER}@127.0.0.1:{shim.port}/{database}?{options}"


@pytest.fixture(scope="session")
def redshift(shim: PgShim, pg_database: str) -> Iterator[RedshiftWarehouse]:
    warehouse = open_warehouse(_url(shim, pg_database))
    assert isinstance(warehouse, RedshiftWarehouse)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="session")
def duck(warehouse_file: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(f"duckdb://{warehouse_file}")
    yield warehouse
    warehouse.close()


def _sorted(rows: CatalogRows) -> tuple[pa.Table, pa.Table]:
    """SQL promises no order; compare in a fixed one."""
    by_pair = [("course_id", "ascending"), ("school_id", "ascending")]
    return rows.courses.sort_by("id"), rows.links.sort_by(by_pair)


def _assert_same(actual: CatalogRows, expected: CatalogRows) -> None:
    for got, want in zip(_sorted(actual), _sorted(expected), strict=True):
        assert got.schema == want.schema
        assert got.equals(want), f"first rows differ:\n{got.slice(0, 5)}\nvs\n{want.slice(0, 5)}"


# School 2 belongs to institution 2 and 4 is repeated: the plain constructor sends both as given.
FOREIGN_AND_REPEATED = (1, 2, 4, 4, HOSTILE_SCHOOL_ID)
MARCH = (date(2025, 3, 1), date(2025, 3, 31))
QUERIES = {
    "no-school-filter": (YEAR_2025, True),
    "school-filter-foreign-and-repeated-ids": (
        CatalogQuery(1, YEAR_2025.period_start, YEAR_2025.period_end, FOREIGN_AND_REPEATED),
        True,
    ),
    "no-activity": (CatalogQuery.for_dates(1, date(2030, 1, 1), date(2030, 1, 31), UTC), True),
    "institution-without-courses": (CatalogQuery(99, YEAR_2025.period_start, YEAR_2025.period_end), False),
    "sao-paulo-period": (
        CatalogQuery.for_dates(2, *MARCH, ZoneInfo("America/Sao_Paulo"), school_ids=[2, 5, 8]),
        True,
    ),
}


@pytest.mark.parametrize(("query", "has_courses"), QUERIES.values(), ids=QUERIES.keys())
def test_matches_duckdb(
    redshift: RedshiftWarehouse, duck: DuckDBWarehouse, query: CatalogQuery, has_courses: bool
) -> None:
    expected = duck.fetch(query)
    assert (expected.courses.num_rows > 0) is has_courses  # guards against comparing two empty tables
    _assert_same(redshift.fetch(query), expected)
    assert redshift.school_names(query).sort_by("id").equals(duck.school_names(query).sort_by("id"))
    for k in (1, 2, 3, 7):
        ranges = redshift.id_ranges(query, k)
        assert ranges == duck.id_ranges(query, k)
        sizes = [r.courses for r in ranges]
        assert sum(sizes) == expected.courses.num_rows and (not sizes or max(sizes) - min(sizes) <= 1)
        assert all(a.last_id < b.first_id for a, b in zip(ranges, ranges[1:]))
        parts = [redshift.fetch(query.part(r)) for r in ranges] or [expected]
        whole = CatalogRows(pa.concat_tables([p.courses for p in parts]), pa.concat_tables([p.links for p in parts]))
        _assert_same(whole, expected)


def test_no_activity_period_counts_zero(redshift: RedshiftWarehouse) -> None:
    courses = redshift.fetch(QUERIES["no-activity"][0]).courses
    for column in ("views", "enrollments", "completions"):
        assert set(courses[column].to_pylist()) == {0}


def test_streams_in_fetch_blocks(shim: PgShim, pg_database: str, duck: DuckDBWarehouse) -> None:
    """With fetch_rows=100 the wire shows one transaction, two cursors and many bounded FETCHes,
    each of one packed row (the most a block of 100 report rows allows) but the empty one that
    ends each cursor, and nothing lost."""
    warehouse = RedshiftWarehouse(_url(shim, pg_database, "ssl=false&fetch_rows=100"))
    try:
        shim.command_tags.clear()
        rows = warehouse.fetch(YEAR_2025)
    finally:
        warehouse.close()
    tags = list(shim.command_tags)
    fetched = [int(tag.split()[1]) for tag in tags if tag.startswith("FETCH ")]
    assert tags[0] == "BEGIN" and tags[-1] == "COMMIT"
    assert tags.count("DECLARE CURSOR") == tags.count("CLOSE CURSOR") == 2
    assert sorted(set(fetched)) == [0, 1] and fetched.count(0) == 2
    chunks = -(-rows.courses.num_rows // per_chunk(COURSES_SCHEMA)) + -(-rows.links.num_rows // per_chunk(LINKS_SCHEMA))
    assert chunks <= sum(fetched) <= chunks + 2 * packed.SLOTS  # at most one short chunk per slot
    _assert_same(rows, duck.fetch(YEAR_2025))


def test_values_travel_as_bind_parameters(shim: PgShim, pg_database: str) -> None:
    """On the wire each DECLARE carries $1..$n placeholders and none of the query's values."""
    query = QUERIES["school-filter-foreign-and-repeated-ids"][0]
    warehouse = RedshiftWarehouse(_url(shim, pg_database))  # fresh session: nothing prepared yet
    try:
        shim.parsed_sql.clear()
        warehouse.fetch(query)
    finally:
        warehouse.close()
    declares = [sql for sql in shim.parsed_sql if sql.startswith("DECLARE")]
    expected = [len(query.courses_sql()[1]), len(query.links_sql()[1])]
    assert [len(set(re.findall(r"\$\d+", sql))) for sql in declares] == expected
    assert not any("2025" in sql for sql in declares)  # the period bounds stayed out of the text


def test_hostile_text_round_trips_as_data(redshift: RedshiftWarehouse) -> None:
    rows = redshift.fetch(YEAR_2025)
    course = rows.courses.filter(pc.equal(rows.courses["id"], HOSTILE_COURSE_ID)).to_pylist()
    assert course == [
        {
            "id": HOSTILE_COURSE_ID,
            "title": HOSTILE_TITLE,
            "status": "published",
            "published_at": datetime(2025, 3, 1, 12, 0, 0, 123456),
            "views": 1,
            "enrollments": 0,
            "completions": 0,
        }
    ]
    links = rows.links.filter(pc.equal(rows.links["course_id"], HOSTILE_COURSE_ID))
    assert links["school_id"].to_pylist() == [HOSTILE_SCHOOL_ID]
    names = redshift.school_names(YEAR_2025)
    assert names.filter(pc.equal(names["id"], HOSTILE_SCHOOL_ID))["name"].to_pylist() == [HOSTILE_SCHOOL]
    # Nothing was executed: both tables are still there and whole.
    assert redshift.fetch(YEAR_2025).courses.num_rows == rows.courses.num_rows


def test_text_that_cannot_be_packed_travels_loose_and_exact(
    redshift: RedshiftWarehouse, shim: PgShim, pg_database: str
) -> None:
    courses = redshift.fetch(YEAR_2025).courses
    got = courses.filter(pc.is_in(courses["id"], pa.array(ODD_COURSE_IDS.values()))).sort_by("id")
    assert got.select(["title", "status"]).to_pylist() == [
        {"title": title, "status": status} for title, status in ODD_COURSES.values()
    ]
    assert got["published_at"].null_count == len(ODD_COURSES)
    # and exactly the courses that must travel loose do (the rest ride in packed chunks)
    ids = ", ".join(map(str, ODD_COURSE_IDS.values()))
    odd = (
        "SELECT id, title, status, published_at, 0 AS views, 0 AS enrollments, 0 AS completions "
        f"FROM courses WHERE id IN ({ids})"
    )
    con = redshift_connector.connect(host="127.0.0.1", port=shim.port, database=pg_database, user=PG_USER, ssl=False)
    try:
        cur = con.cursor()
        cur.execute(packed.packed_sql(odd, COURSES_SCHEMA))
        rows = cur.fetchall()
    finally:
        con.close()
    loose = {int(chunk.split(packed.FIELD)[0]) for slot, chunk, *_ in rows if slot == packed.SLOTS}
    expected = {"separators", "status-separator", "long", "null-status", "null-title", "line-breaks", "carriage-return"}
    assert loose == {ODD_COURSE_IDS[name] for name in expected}


def test_a_chunk_of_the_widest_packable_rows_fits_redshifts_listagg(shim: PgShim, pg_database: str) -> None:
    """Redshift fails a LISTAGG above 65,535 bytes (the stand-in's does not): rows as wide as
    packing allows — the longest text, the widest numbers and instants — make a chunk under it."""
    title = "𝄞" * ((packed.TEXT_BYTES - len("published")) // 4)
    widest = (
        f"SELECT -9223372036854775807 - 1 + 64 * g AS id, '{title}' AS title, 'published' AS status, "
        "TIMESTAMP '9999-12-31 23:59:59.999999' AS published_at, -9223372036854775807 - 1 AS views, "
        "-9223372036854775807 - 1 AS enrollments, -9223372036854775807 - 1 AS completions "
        "FROM generate_series(0, 999) g"
    )
    con = redshift_connector.connect(host="127.0.0.1", port=shim.port, database=pg_database, user=PG_USER, ssl=False)
    try:
        cur = con.cursor()
        cur.execute(f"SELECT MAX(OCTET_LENGTH(chunk)), COUNT(*) FROM ({packed.packed_sql(widest, COURSES_SCHEMA)}) t")
        longest, chunks = cur.fetchone()
        cur.execute(f"SELECT * FROM ({packed.packed_sql(widest, COURSES_SCHEMA)}) t")
        back = packed.unpack(cur.fetchall(), COURSES_SCHEMA)
    finally:
        con.close()
    assert 0.95 * packed.LIMIT < longest <= packed.LIMIT  # close to the limit: the bound is tight, and holds
    assert chunks == -(-1000 // packed.per_chunk(COURSES_SCHEMA))  # one slot (ids 64 apart), full chunks
    assert back.num_rows == 1000 and back["title"].unique().to_pylist() == [title]
    assert back["views"].unique().to_pylist() == [-(2**63)]
    assert back["published_at"].unique().to_pylist() == [datetime(9999, 12, 31, 23, 59, 59, 999999)]


def test_refused_statement_rolls_back_and_keeps_the_session(shim: PgShim, pg_server: None) -> None:
    """The `postgres` database has no report tables: each fetch fails cleanly, never with
    'current transaction is aborted', so the ROLLBACK left the session reusable."""
    warehouse = RedshiftWarehouse(_url(shim, "postgres"))
    try:
        for _ in range(2):
            with pytest.raises(redshift_connector.ProgrammingError, match="relation .* does not exist"):
                warehouse.fetch(YEAR_2025)
    finally:
        warehouse.close()


def test_unreachable_server_raises_connection_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(WarehouseConnectionError, match=f"reporter@127.0.0.1:{port}/catalog") as caught:
        RedshiftWarehouse(f"redshift://reporter:s3cret@127.0.0.1:{port}/catalog?ssl=false&timeout=5")
    assert "s3cret" not in str(caught.value)


def test_rejected_login_raises_connection_error(pg_server: None) -> None:
    """Without the shim PostgreSQL refuses the driver's Redshift-only startup parameters."""
    with pytest.raises(WarehouseConnectionError, match="client_protocol_version"):
        RedshiftWarehouse(f"redshift://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres?ssl=false")


@pytest.mark.parametrize(
    "options",
    ["ssl=maybe", "fetch_rows=0", "sslmode=disable", "partitions=0", "partitions=65", "partition_min_rows=-1"],
)
def test_rejects_bad_options(options: str) -> None:
    with pytest.raises(ValueError):
        RedshiftWarehouse(f"redshift://u@127.0.0.1:1/db?{options}")


# ---- partitioned fetch: same sheet for any backend and partitioning; lost partitions re-fetched


def _sheet(settings, warehouse, query, fetch=fetch_here, render=render_serially) -> bytes:
    out = settings.data_dir / f"report-{secrets.token_hex(3)}.xlsx"
    produce_report(warehouse, query, subdomain="demo", options=settings.report, out=out, fetch=fetch, render=render)
    with zipfile.ZipFile(out) as z:
        return z.read("xl/worksheets/sheet1.xml")


@pytest.fixture(scope="session")
def one_piece_sheet(duck: DuckDBWarehouse, settings_factory, tmp_path_factory) -> bytes:
    """The report of YEAR_2025 from DuckDB in one piece: what every other way must equal."""
    return _sheet(settings_factory(tmp_path_factory.mktemp("sheet"), chunk_rows=300), duck, YEAR_2025)


@pytest.mark.parametrize(
    "options",
    ["partitions=1", "partitions=2&partition_min_rows=0", "partitions=4&partition_min_rows=0", "partitions=4"],
)
def test_same_sheet_from_redshift_in_any_partitioning(
    shim, pg_database, settings_factory, tmp_path, one_piece_sheet, options
):
    warehouse = open_warehouse(_url(shim, pg_database, f"ssl=false&{options}"))
    try:
        k = int(options.split("&")[0].split("=")[1]) if "min_rows" in options else 1  # else: too small to cut
        assert len(partition_queries(warehouse, YEAR_2025, cpus=1)) == k
        assert _sheet(settings_factory(tmp_path, chunk_rows=300), warehouse, YEAR_2025) == one_piece_sheet
    finally:
        warehouse.close()


def test_same_sheet_from_duckdb_partitions(warehouse_file, settings_factory, tmp_path, one_piece_sheet):
    warehouse = open_warehouse(f"duckdb://{warehouse_file}?partitions=3&partition_min_rows=0")
    try:
        assert len(partition_queries(warehouse, YEAR_2025, cpus=1)) == 3
        assert _sheet(settings_factory(tmp_path, chunk_rows=300), warehouse, YEAR_2025) == one_piece_sheet
    finally:
        warehouse.close()


@pytest.mark.parametrize("options", ["partitions=3&partition_min_rows=0", "partitions=1"])
def test_same_sheet_from_duckdb_on_ray(
    ray_session, warehouse_file, settings_factory, tmp_path, one_piece_sheet, options
):
    """Through Ray: three partitions fetched in tasks, each chunk picking its rows from them in
    the object store; or one piece fetched here, laid out in report order, each chunk a slice."""
    warehouse = open_warehouse(f"duckdb://{warehouse_file}?{options}")
    try:
        renderer = RayRenderer(2, cpus_per_chunk=0.5)
        sheet = _sheet(settings_factory(tmp_path, chunk_rows=300), warehouse, YEAR_2025, fetch_on_ray, renderer.render)
        assert sheet == one_piece_sheet
    finally:
        warehouse.close()


def _kill_when_fetching(stop: threading.Event, killed: list) -> None:
    """SIGKILL the first Ray worker seen running a partition fetch (Ray names the process after it)."""
    while not stop.is_set() and not killed:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                running_fetch = b"ray::_fetch_task" in cmdline.read_bytes()
            except OSError:
                continue  # the process ended meanwhile
            if running_fetch:
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed.append(cmdline.parent.name)
                return
        time.sleep(0.01)


def _terminate_sessions_when_fetching(database: str, stop: threading.Event, killed: list) -> None:
    """Have PostgreSQL end the report's sessions mid-FETCH: the driver sees a dropped connection."""
    sql = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'catalog-report' AND query LIKE 'FETCH%'"
    )
    while not stop.is_set() and not killed:
        out = subprocess.run(
            ["psql", "-X", "-qtA", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", database, "-c", sql],
            capture_output=True,
            text=True,
        ).stdout.split()
        if "t" in out:
            killed.append(out)
            return
        time.sleep(0.02)


@pytest.mark.parametrize("fault", ["worker-killed", "session-dropped"])
def test_lost_partition_is_fetched_again(
    ray_session, shim, pg_database, settings_factory, tmp_path, one_piece_sheet, fault
):
    """Three partitions fetched in Ray tasks, one row per round trip so they take a while; one
    task's process is killed, or the server drops its sessions: the lost partitions are fetched
    again on their own (the ranges are planned once) and the sheet is the same."""
    warehouse = open_warehouse(_url(shim, pg_database, "ssl=false&partitions=3&partition_min_rows=0&fetch_rows=1"))
    stop, killed = threading.Event(), []
    saboteur = (
        (lambda: _kill_when_fetching(stop, killed))
        if fault == "worker-killed"
        else (lambda: _terminate_sessions_when_fetching(pg_database, stop, killed))
    )
    thread = threading.Thread(target=saboteur, daemon=True)
    shim.parsed_sql.clear()
    thread.start()
    try:
        renderer = RayRenderer(2, cpus_per_chunk=0.5)
        sheet = _sheet(settings_factory(tmp_path, chunk_rows=300), warehouse, YEAR_2025, fetch_on_ray, renderer.render)
    finally:
        stop.set()
        thread.join()
        warehouse.close()
    assert killed, "the fault was never injected: the fetch finished first"
    assert sheet == one_piece_sheet
    assert sum(sql.startswith("DECLARE catalog_ranges") for sql in shim.parsed_sql) == 1


def test_partitions_are_fetched_while_every_cpu_is_taken(ray_session, shim, pg_database):
    """Other work (other jobs' render tasks, any actor) may hold every CPU of the cluster; a
    partition fetch asks for none, so it still starts."""

    class Holder:  # an actor that holds the CPUs it was given (defined here: shipped by value)
        pass

    hog = ray_session.remote(num_cpus=ray_session.available_resources()["CPU"])(Holder).remote()
    ray_session.get(hog.__ray_ready__.remote())
    warehouse = open_warehouse(_url(shim, pg_database, "ssl=false&partitions=2&partition_min_rows=0"))
    fetched: list = []
    job = threading.Thread(target=lambda: fetched.append(fetch_on_ray(warehouse, YEAR_2025, UTC)), daemon=True)
    try:
        job.start()
        job.join(timeout=120)
        assert len(fetched) == 1 and len(fetched[0]) == 2, "the partitions never ran"
    finally:
        ray_session.kill(hog)
    try:
        expected = sum(f.summary.ids.size for f in fetch_here(warehouse, YEAR_2025, UTC))
    finally:
        warehouse.close()
    assert sum(f.summary.ids.size for f in fetched[0]) == expected > 0


def test_a_fetch_does_not_wait_for_another_threads_fetch(shim, pg_database):
    """A consumer runs several jobs at once: each fetch has a session of its own (one is opened
    when none is idle), so a small report's query runs beside a big one's, not after it, and
    both sessions are kept for the next fetches."""
    warehouse = open_warehouse(_url(shim, pg_database, "ssl=false&fetch_rows=1"))  # a long fetch
    finished: dict[str, float] = {}

    def big():
        warehouse.fetch(YEAR_2025)
        finished["big"] = time.monotonic()

    try:
        shim.parsed_sql.clear()
        thread = threading.Thread(target=big)
        thread.start()
        while not any(sql.startswith("FETCH") for sql in list(shim.parsed_sql)):
            time.sleep(0.005)
        names = warehouse.school_names(YEAR_2025)
        finished["small"] = time.monotonic()
        thread.join()
        assert finished["small"] < finished["big"] and names.num_rows > 0
        assert len(warehouse._idle) == 2
    finally:
        warehouse.close()


def _sql_rows(database: str, sql: str) -> list[str]:
    args = ["psql", "-X", "-qtA", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", database, "-c", sql]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split("\n")[:-1]


def _report_queries(database: str) -> list[str]:
    """The statements the service's sessions are running now (wait event, text)."""
    return _sql_rows(
        database,
        "SELECT coalesce(wait_event_type, '-') || ' ' || query FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'catalog-report' AND state = 'active' "
        "AND query NOT LIKE 'SELECT pg_cancel_backend%'",
    )


def _until(condition, timeout: float = 10, what: str = "", state=lambda: "") -> None:
    """Wait for ``condition()``; on timeout, fail saying what was awaited and ``state()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {state()}"
        time.sleep(0.02)


LOCKER = "catalog-test-locker"


@contextlib.contextmanager
def _table_locked(database: str, table: str = "courses") -> Iterator[None]:
    """Another session holds a table the report reads: the report's query waits on the server."""
    args = ["psql", "-X", "-q", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", database]
    hold = f"BEGIN; LOCK TABLE {table}; SELECT pg_sleep(60);"
    locker = subprocess.Popen([*args, "-c", hold], stdout=subprocess.DEVNULL, env={**os.environ, "PGAPPNAME": LOCKER})
    try:
        held = f"SELECT 1 FROM pg_locks WHERE relation = '{table}'::regclass AND granted"
        _until(lambda: _sql_rows(database, held), what="the lock")
        yield
    finally:
        # The server would hold the lock until pg_sleep ends, whatever happens to psql.
        end = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{LOCKER}'"
        _sql_rows(database, end)
        locker.wait()


@pytest.mark.parametrize("where", ["waiting on the server", "between FETCH blocks"])
def test_an_interrupted_fetch_stops_on_the_server_and_keeps_its_session(shim, pg_database, where):
    """A canceled job's query (Warehouse.interrupt, from another thread): a statement the server
    runs is canceled there (pg_cancel_backend), a cursor being read stops at the next block;
    either way the fetch raises at once and the session serves the next fetch."""
    warehouse = open_warehouse(_url(shim, pg_database, "ssl=false&fetch_rows=1"))
    raised: list[BaseException] = []

    def fetch():
        try:
            warehouse.fetch(YEAR_2025)
        except BaseException as exc:
            raised.append(exc)

    try:
        with _table_locked(pg_database) if where == "waiting on the server" else contextlib.nullcontext():
            thread = threading.Thread(target=fetch)
            thread.start()
            if where == "waiting on the server":
                _until(lambda: any("Lock DECLARE" in q for q in _report_queries(pg_database)), what="the wait")
            else:
                fetching = (
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'catalog-report' AND query LIKE 'FETCH%'"
                )
                _until(lambda: _sql_rows(pg_database, fetching), what="FETCHes")
            started = time.monotonic()
            warehouse.interrupt(thread.ident)
            thread.join(5)
            assert not thread.is_alive() and time.monotonic() - started < 2
        assert len(raised) == 1 and isinstance(raised[0], FetchInterrupted), raised
        _until(lambda: _report_queries(pg_database) == [], timeout=5, what="no statement left")
        assert warehouse.fetch(YEAR_2025).courses.num_rows > 0 and len(warehouse._idle) >= 1
    finally:
        warehouse.close()


def test_a_canceled_fetch_in_tasks_cancels_its_partitions_on_the_server(ray_session, shim, pg_database):
    """Partitions in Ray tasks: once the job is canceled the tasks are cancelled, each cancelling
    its statement on the server before it lets its session go."""
    warehouse = open_warehouse(_url(shim, pg_database, "ssl=false&partitions=3&partition_min_rows=0&fetch_rows=1"))
    canceled, raised = threading.Event(), []

    def fetch():
        try:
            fetch_on_ray(warehouse, YEAR_2025, UTC, canceled=canceled.is_set)
        except BaseException as exc:
            raised.append(exc)

    try:
        with _table_locked(pg_database, "course_views"):  # not the courses: their ranges are planned first
            thread = threading.Thread(target=fetch)
            thread.start()
            waiting = lambda: sum("Lock DECLARE" in q for q in _report_queries(pg_database)) == 3  # noqa: E731
            _until(waiting, timeout=30, what="three partitions waiting")
            started = time.monotonic()
            canceled.set()
            thread.join(5)
            assert not thread.is_alive() and time.monotonic() - started < 2
            assert len(raised) == 1 and isinstance(raised[0], FetchInterrupted), raised
            # Canceled on the server while the lock is still held: nothing waits on it any more.
            # (Uncanceled, they would wait as long as the lock is held; each task learns of its
            # cancellation from Ray, which on a machine busy with the rest of the suite took > 5 s.)
            sessions = "SELECT pid, state, wait_event_type, query_start, left(query, 60) FROM pg_stat_activity "
            sessions += "WHERE application_name = 'catalog-report'"
            _until(
                lambda: _report_queries(pg_database) == [],
                timeout=20,
                what="no statement left",
                state=lambda: _sql_rows(pg_database, sessions),
            )
    finally:
        warehouse.close()


def test_a_running_job_canceled_during_its_query_stops_within_seconds(shim, pg_database, settings_factory, tmp_path):
    """SPEC §2a through the consumer: the job's query waits on the server when its requester
    cancels; the consumer's heartbeat sees it and interrupts the query, and the job ends
    canceled, with no file, no notification, its message acked."""
    settings = settings_factory(tmp_path)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    ledger = Ledger(storage)
    runner = JobRunner(
        settings.runner,
        queue,
        storage,
        open_warehouse(_url(shim, pg_database)),
        open_notifier(settings.notify_url, settings.notify),
        render_serially,
    )
    job_id = accept(queue, storage)  # institution 1, 2025: YEAR_2025
    with _table_locked(pg_database):
        thread = threading.Thread(target=runner.run_once, kwargs={"wait_seconds": 0})
        thread.start()
        _until(lambda: any("Lock DECLARE" in q for q in _report_queries(pg_database)), timeout=30, what="the wait")
        canceled_at = time.monotonic()
        assert withdraw(ledger, *ledger.get(job_id)).status is Status.canceled
        thread.join(10)
        assert not thread.is_alive() and time.monotonic() - canceled_at < 5
        assert _report_queries(pg_database) == []  # interrupted on the server, the lock still held
    state, _ = ledger.get(job_id)
    assert state.status is Status.canceled and queue.pending() == 0
    assert not settings.outbox_path.exists() and not list((settings.data_dir / "files").rglob("*.xlsx"))
