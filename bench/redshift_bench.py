"""The ``redshift://`` job against the warehouse's own time: the same realistic warehouse loaded
into the local PostgreSQL, the report fetched through the unmodified redshift-connector.

    .venv/bin/python bench/redshift_bench.py                          # 1M courses, K = 1, 2, 4
    .venv/bin/python bench/redshift_bench.py --courses 50000 --repeat 1 --partitions 1   # smoke

Measured in one run, medians of --repeat (after one uncounted warm-up of each):

a. the floor: the server computing the report's result sets (``CatalogQuery.courses_sql()``,
   ``links_sql()``, ``names_sql()``; the bound values written in as literals) into ``COPY (…) TO '/dev/null'``
   on the server: no client, no wire;
b. ``psql`` pulling them to a client (``COPY (…) TO STDOUT``, output to /dev/null), directly and
   through the test proxy below (what the proxy alone costs);
c. the service's whole job (HTTP → ``done``, as bench/job_bench.py runs it, phases from the job
   ledger) with ``REPORTS_WAREHOUSE_URL=redshift://…?ssl=false&partitions=K`` for each K of
   --partitions. The driver reaches PostgreSQL through tests/support/pg_shim.py's loopback proxy (it
   rewrites the two startup messages stock PostgreSQL and the driver disagree on), run in a
   process of its own.

The a and b runs are interleaved with the K=1 jobs (a busy neighbour then slows both alike). The
database is created for the run and dropped after it: DuckDB exports the warehouse as CSV, the
server COPYs it (``FREEZE``, rows in the sort-key order of bench/synthetic.py), then builds the
indexes a Redshift table would have sort keys for — courses (institution_id, id), activity and
links (course_id), schools (institution_id, id) — and ANALYZEs. PostgreSQL runs with its own
settings (printed); PostgreSQL, psql and the proxy at niceness 0, the consumer and render
actors lower themselves to 10 as in production. 2 shared cores: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.job_bench import (  # noqa: E402
    OUT,
    SECRET,
    add_data_args,
    data,
    machine,
    median,
    our_jobs,
    phases,
    rss_line,
    spread,
)

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DATABASE = "catalog_bench_"  # + the bench's pid
RESULTS = ("courses", "links", "names")  # the report's result sets, as report_sql() lists them
TABLES = ("schools", "courses", "course_schools", "course_views", "enrollments")
INDEXES = {
    "courses": "institution_id, id",
    "course_schools": "course_id",
    "course_views": "course_id",
    "enrollments": "course_id",
    "schools": "institution_id, id",
}
# The proxy in a process of its own: prints its port, runs until its stdin closes.
SHIM_MAIN = """
import sys
from tests.support.pg_shim import PgShim
shim = PgShim(sys.argv[1], int(sys.argv[2]))
print(shim.start(), flush=True)
sys.stdin.read()
shim.stop()
"""
# psql must open with a StartupMessage (the proxy reads the first message as one), not an SSL or
# GSS encryption request.
PSQL_ENV = dict(os.environ, PGSSLMODE="disable", PGGSSENCMODE="disable")


def psql(database: str, *commands: str, port: int = PG_PORT, out: str | None = None, bare: bool = False) -> str:
    """Run ``commands`` in one session (each a ``-c``), stopping at the first error; its stdout
    (``bare``: values only, unaligned)."""
    args = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-p", str(port), "-U", PG_USER, "-d", database]
    if out:
        args += ["-o", out]
    if bare:
        args.append("-At")
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, check=True, capture_output=True, text=True, env=PSQL_ENV).stdout


def drop_stale() -> None:
    """Drop the databases of earlier runs that were killed before they could drop their own
    (named after the bench's pid: one whose process is gone is stale)."""
    listed = psql("postgres", f"SELECT datname FROM pg_database WHERE datname LIKE '{DATABASE}%'", bare=True)
    for name in listed.split():
        if not Path(f"/proc/{name.removeprefix(DATABASE)}").exists():
            psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def load(duckdb_path: Path, database: str) -> dict[str, float]:
    """Create ``database`` with the warehouse's rows, indexes and statistics; seconds per step."""
    import duckdb

    from actors.warehouse.demo import SCHEMA
    from tests.support.pg_shim import REDSHIFT_FUNCTIONS

    steps = {}
    csv_dir = Path(tempfile.mkdtemp(prefix="redshift_bench_"))
    csv_dir.chmod(0o755)  # the server reads the files as its own user
    try:
        t = time.perf_counter()
        with duckdb.connect(str(duckdb_path), read_only=True) as con:
            for table in TABLES:  # insertion order is kept: the rows stay in sort-key order
                con.execute(f"COPY {table} TO '{csv_dir / table}.csv' (FORMAT csv, HEADER false)")
        steps["export CSV (DuckDB)"] = time.perf_counter() - t
        psql("postgres", f"CREATE DATABASE {database}")
        t = time.perf_counter()
        copies = [f"COPY {table} FROM '{csv_dir / table}.csv' WITH (FORMAT csv, FREEZE)" for table in TABLES]
        # FREEZE needs the tables created in the same transaction
        psql(database, "BEGIN", SCHEMA, REDSHIFT_FUNCTIONS, *copies, "COMMIT")
        steps["COPY into PostgreSQL"] = time.perf_counter() - t
    finally:
        shutil.rmtree(csv_dir, ignore_errors=True)
    t = time.perf_counter()
    psql(database, *(f"CREATE INDEX ON {table} ({columns})" for table, columns in INDEXES.items()))
    steps["indexes"] = time.perf_counter() - t
    t = time.perf_counter()
    psql(database, "VACUUM ANALYZE")
    steps["VACUUM ANALYZE"] = time.perf_counter() - t
    return steps


def literal(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, datetime)):
        raise TypeError(f"no literal for {value!r}")
    return str(value) if isinstance(value, int) else f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def inline(sql: str, params: list) -> str:
    """The statement with its bound values written in, on one line (only here: the service binds)."""
    sql = re.sub(r"--[^\n]*", "", sql)  # comments: one of them shows "?" marks
    pieces = sql.split("?")
    if len(pieces) != len(params) + 1:
        raise ValueError(f"{len(pieces) - 1} marks for {len(params)} values")
    text = pieces[0] + "".join(literal(v) + piece for v, piece in zip(params, pieces[1:]))
    return " ".join(text.split())


def report_sql() -> list[str]:
    """The statements of institution 1's report over the bench period: its courses with their
    counts, their school links, the institution's school names."""
    from zoneinfo import ZoneInfo

    from actors.warehouse import CatalogQuery
    from bench.synthetic import INSTITUTION, PERIOD

    query = CatalogQuery.for_dates(INSTITUTION, *PERIOD, ZoneInfo("UTC"))
    return [inline(*sql) for sql in (query.courses_sql(), query.links_sql(), query.names_sql())]


def _statement_seconds(output: str) -> list[float]:
    """Each statement's seconds, from psql's ``\\timing`` lines."""
    return [float(ms) / 1e3 for ms in re.findall(r"^Time: ([\d.]+) ms", output, re.M)]


def floor(database: str, statements: list[str]) -> dict:
    """The result sets computed by the server into its own /dev/null."""
    t = time.perf_counter()
    out = psql(database, "\\timing on", *(f"COPY ({sql}) TO '/dev/null'" for sql in statements))
    total = time.perf_counter() - t
    rows = [int(n) for n in re.findall(r"^COPY (\d+)", out, re.M)]
    return {"total": total, **dict(zip(RESULTS, _statement_seconds(out))), "rows": rows}


def pull(database: str, statements: list[str], port: int = PG_PORT) -> dict:
    """The result sets pulled by psql (text format) and thrown away."""
    t = time.perf_counter()
    out = psql(database, "\\timing on", *(f"COPY ({sql}) TO STDOUT" for sql in statements), port=port, out="/dev/null")
    total = time.perf_counter() - t
    return {"total": total, **dict(zip(RESULTS, _statement_seconds(out)))}


class Shim:
    """tests/support/pg_shim.py's proxy in a child process."""

    def __enter__(self) -> Shim:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SHIM_MAIN, PG_HOST, str(PG_PORT)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def server_settings(database: str) -> str:
    names = ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
    listed = ", ".join(f"'{n}'" for n in names)
    return psql(
        database,
        "SELECT 'PostgreSQL ' || current_setting('server_version') || ': ' || string_agg("
        f"name || ' ' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN ({listed})",
        bare=True,
    ).strip()


@dataclass
class Results:
    floors: list[dict] = field(default_factory=list)  # a
    pulls: list[dict] = field(default_factory=list)  # b
    proxied: list[dict] = field(default_factory=list)  # b′
    jobs: dict[int, list[dict]] = field(default_factory=dict)  # c, by K
    peaks: dict[int, dict[str, float]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(p)
    p.add_argument("--partitions", default="1,2,4", help="comma-separated K values")
    p.add_argument(
        "--partition-min-rows",
        type=int,
        default=None,
        help="the URL's partition_min_rows (default: the backend's); 0 partitions small reports too",
    )
    args = p.parse_args()

    from actors.runtime.priority import workers_at_normal_priority

    workers_at_normal_priority()
    path, about = data(args)
    drop_stale()
    database = f"{DATABASE}{os.getpid()}"
    statements = report_sql()
    res = Results()
    try:
        t = time.perf_counter()
        steps = load(path, database)
        loaded = time.perf_counter() - t
        print(
            f"loaded into {database} in {loaded:.1f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()),
            flush=True,
        )
        setup = [
            server_settings(database)
            + f"; loaded in {loaded:.0f} s ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items())
            + ")"
        ]
        with Shim() as shim:

            def peers() -> None:
                res.floors.append(floor(database, statements))
                res.pulls.append(pull(database, statements))
                res.proxied.append(pull(database, statements, port=shim.port))
                print(
                    f"  floor {res.floors[-1]['total']:.2f}s, psql {res.pulls[-1]['total']:.2f}s, "
                    f"psql via proxy {res.proxied[-1]['total']:.2f}s",
                    flush=True,
                )

            # warm-up, not counted: the server's caches, as the service's first job does
            floor(database, statements)
            pull(database, statements)
            pull(database, statements, shim.port)
            for k in (int(k) for k in args.partitions.split(",")):
                url = f"redshift://{PG_USER}@{PG_HOST}:{shim.port}/{database}?ssl=false&partitions={k}"
                if args.partition_min_rows is not None:
                    url += f"&partition_min_rows={args.partition_min_rows}"
                print(f"service: {url}", flush=True)
                values = {
                    "data_dir": tempfile.mkdtemp(prefix="redshift_bench_"),
                    "warehouse_url": url,
                    "jwt_secret": SECRET,
                }
                try:
                    res.jobs[k], res.peaks[k] = our_jobs(values, args.repeat, peers if k == 1 else lambda: None)
                except Exception as exc:  # the other K and the peers are still worth reporting
                    res.failed[k] = f"{type(exc).__name__}: {exc}"[:300]
                    print(f"  K={k} failed: {res.failed[k]}", flush=True)
                finally:
                    shutil.rmtree(values["data_dir"], ignore_errors=True)
            while len(res.floors) < args.repeat:  # K=1 not asked for, or failed early
                peers()
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    text = table(args, about + setup, res)
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"redshift_bench{'' if args.shape == 'catalogue' else '_' + args.shape}.md").write_text(text + "\n")


def table(args, about: list[str], res: Results) -> str:
    base = statistics.median(r["total"] for r in res.floors)
    rows = res.floors[0]["rows"]

    def parts(runs: list[dict], names: list[str]) -> str:
        return ", ".join(f"{name} {median(runs, name):.2f}" for name in names)

    def ratio(runs: list[dict]) -> str:
        return f"{statistics.median(r['total'] for r in runs) / base:.2f}×"

    lines = [
        f"## redshift:// job vs the warehouse's own time, {args.courses:,} courses ({args.shape} data), "
        f"medians of {args.repeat}\n",
        machine() + ".",
        about[-1] + ".",
        "Data: "
        + "; ".join(about[:-1])
        + ". The report's result sets: "
        + ", ".join(f"{name} {n:,} rows" for name, n in zip(RESULTS, rows))
        + ".\n",
        "| | seconds, median (min–max) | × floor | medians of its parts (statements; the job's ledger phases) |",
        "|---|---:|---:|---|",
        f"| a. server: the result sets into COPY … TO '/dev/null' (the floor) | {spread(res.floors, 'total')} "
        f"| 1.00× | {parts(res.floors, RESULTS)} |",
        f"| b. psql pulls them (COPY … TO STDOUT, -o /dev/null) | {spread(res.pulls, 'total')} | {ratio(res.pulls)} "
        f"| {parts(res.pulls, RESULTS)} |",
        f"| b′. the same through the test proxy (tests/support/pg_shim.py) | {spread(res.proxied, 'total')} "
        f"| {ratio(res.proxied)} | {parts(res.proxied, RESULTS)} |",
    ]
    for k, runs in res.jobs.items():
        lines.append(
            f"| c. service job, redshift-connector via the proxy, K={k}: HTTP → done "
            f"| {spread(runs, 'total')} | {ratio(runs)} | {parts(runs, ['accept', *phases(runs)])} |"
        )
    for k, error in res.failed.items():
        lines.append(f"| c. service job, K={k} | failed | — | {error} |")
    lines += [
        "",
        "Peak RSS over the timed jobs, MB (largest process of each kind): "
        + "; ".join(f"K={k}: {rss_line(peak)}" for k, peak in res.peaks.items())
        + ".",
        "",
        "The floor and psql runs alternate with the K=1 jobs. The service's total includes HTTP, "
        "queueing, status polling and storing the file; its query phase is the fetch through the "
        "driver and the proxy, whose own cost for psql's bytes is b′ − b.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
