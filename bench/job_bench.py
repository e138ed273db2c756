"""Whole job for a 1,000,000-course institution: request accepted → status ``done``, against
one warm process running the same query in DuckDB and writing with rustpy-xlsxwriter.

    .venv/bin/python bench/job_bench.py                 # 1M courses, 20M views, 3 runs each
    .venv/bin/python bench/job_bench.py --courses 50000 --repeat 1      # smoke
    .venv/bin/python bench/job_bench.py --shape legacy  # the older demo-data warehouse

The warehouse is bench/synthetic.py's realistic catalogue (institution 1 of it, cached in
bench/out/cache); ``--shape legacy`` is ``catalog-report demo-data`` output, whose titles come from
two short word lists. Ours is the real service: Ray Serve app + consumer + render tasks on 2 CPUs, driven
over HTTP, phases read from the job ledger; its clock runs from sending the request to the
ledger's ``finished_at`` (the moment the status turns ``done``, same machine clock), so the
client's status polls (every 0.25 s) neither round the time up nor take CPU from the job while it
runs. The peer is the same DuckDB query and the same Arrow post-processing (``build_report``) in
one process, then rustpy-xlsxwriter; both are warmed up once first, then their runs alternate (a
busy neighbour slows both alike). Peak RSS is each process's VmHWM over the timed runs (reset
after the warm-up through /proc/<pid>/clear_refs). Medians of --repeat runs; the machine is
shared, so read the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
SECRET = "bench-secret-0123456789-0123456789-abcdef"
APP_NAME = "catalog-report"
# Processes whose peak RSS is reported: kind → what their /proc cmdline contains. Any other Ray
# worker but Serve's own and the rate limiter is a "task worker": render chunks and partitioned
# fetches run there.
PROCESS_KINDS = {
    "consumer": f"ServeReplica:{APP_NAME}:JobConsumer",
    "API replica": f"ServeReplica:{APP_NAME}:ReportsAPI",
}
PHASE_ORDER = ("query", "prepare", "layout", "render", "merge", "store")  # the pipeline's, as the ledger has them
JOB_TIMEOUT = 600  # seconds; a job that hangs ends the bench instead of blocking it
NOT_REPORTED = ("ServeController", "ProxyActor", "RateLimiter")


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The warehouse options every job bench takes (see bench/synthetic.py)."""
    from bench.synthetic import SHAPES

    p.add_argument("--courses", type=int, default=1_000_000, help="the report's rows")
    p.add_argument("--views", type=int, default=None, help="default: 20 per course")
    p.add_argument("--enrollments", type=int, default=None, help="default: 5 per course")
    p.add_argument("--schools", type=int, default=200)
    p.add_argument("--shape", choices=SHAPES, default="catalogue")
    p.add_argument("--repeat", type=int, default=3)


def data(args) -> tuple[Path, list[str]]:
    """The warehouse file, generated once, and lines describing it for the printed table."""
    from bench.synthetic import describe, warehouse

    path, seconds = warehouse(args.courses, args.views, args.enrollments, schools=args.schools, shape=args.shape)
    print(f"warehouse {path.name}" + ("" if seconds is None else f" generated in {seconds:.1f}s"), flush=True)
    about = describe(path)
    print(about, flush=True)
    return path, about.splitlines()[:3]


def machine() -> str:
    """When and where: figures are only comparable within one run on one machine."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs ({model}), Python "
        f"{platform.python_version()}; load average at the end {load} (a shared machine: read ratios)"
    )


def peer_job(settings, out: Path) -> dict[str, float]:
    """The reference: one warm process, same query, rustpy-xlsxwriter."""
    import rustpy_xlsxwriter

    from actors.report.catalog import HEADERS, build_report
    from actors.warehouse import CatalogQuery, open_warehouse
    from bench.render_bench import DATE_FORMAT, SHEET, _widths
    from bench.synthetic import INSTITUTION, PERIOD

    t0 = time.perf_counter()
    wh = open_warehouse(settings.warehouse_url)
    query = CatalogQuery.for_dates(INSTITUTION, *PERIOD, settings.zone)
    rows, names = wh.fetch(query), wh.school_names(query)
    t1 = time.perf_counter()
    report = build_report(
        rows,
        names,
        subdomain="demo",
        student_template=settings.student_url_template,
        admin_template=settings.admin_url_template,
        zone=settings.zone,
    ).cells()
    t2 = time.perf_counter()
    rustpy_xlsxwriter.write_worksheet(
        report.rename_columns(HEADERS),
        str(out),
        sheet_name=SHEET,
        bold_headers=True,
        datetime_format=DATE_FORMAT,
        freeze_row=1,
        autofilter=True,
        column_widths=_widths(report),
    )
    t3 = time.perf_counter()
    wh.close()
    return {"query": t1 - t0, "prepare": t2 - t1, "write": t3 - t2, "total": t3 - t0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_workers() -> dict[int, str]:
    """pid → kind of this process's Ray worker processes (the bench started that Ray)."""
    from bench.backpressure_bench import _descendants

    found = {}
    for pid in _descendants(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if not cmd.startswith("ray::") or any(name in cmd for name in NOT_REPORTED):
            continue
        found[pid] = next((kind for kind, pattern in PROCESS_KINDS.items() if pattern in cmd), "task worker")
    return found


def reset_peak(pid: int | str = "self") -> None:
    """Start VmHWM afresh (Linux: writing 5 to clear_refs resets the peak RSS)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass


def peak_mb(pid: int | str = "self") -> float:
    from bench.backpressure_bench import _status_kb

    return _status_kb(pid).get("VmHWM", 0) / 1024


def start_ray(attempts: int = 3) -> None:
    """A fresh local Ray; tried again when its node misses Ray's fixed 30 s start-up deadline,
    which a loaded shared machine makes it do. The raylet's own wait for its agents (30 s by
    default) is lengthened for the same reason."""
    import ray

    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
            return
        except Exception as exc:
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == attempts:
                raise
            print(f"  Ray start-up timed out (attempt {attempt}); again", flush=True)


def our_jobs(
    values: dict, repeat: int, between: Callable[[], None] = lambda: None
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """The service's job ``repeat`` times after one warm-up, calling ``between`` after each timed
    run (a peer measured interleaved meets the same neighbours); the runs' phase timings and each
    process kind's peak RSS (MB, the largest process of the kind) over the timed runs."""
    import httpx
    import ray
    from ray import serve

    from actors.job.state import JobState
    from bench.synthetic import PERIOD
    from serve_app.app import build_app
    from serve_app.auth import mint_token

    start_ray()
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(values), name=APP_NAME, route_prefix="/")
    token = mint_token(SECRET, 1, 7, "demo", 3600)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    runs, peaks = [], {}
    try:
        for i in range(repeat + 1):  # the first run warms the actors up and is not counted
            started, started_at = time.perf_counter(), time.time()
            r = httpx.get(
                f"{base}/institution/reports/catalog",
                headers=headers,
                timeout=60,
                params={"start_date": PERIOD[0].isoformat(), "end_date": PERIOD[1].isoformat()},
            )
            accepted = time.perf_counter() - started
            job_id = r.json()["results"]["id"]
            deadline = time.monotonic() + JOB_TIMEOUT
            while time.monotonic() < deadline:
                status = httpx.get(f"{base}/institution/reports/jobs/{job_id}", headers=headers, timeout=60).json()
                if status["results"]["status"] in ("done", "failed"):
                    break
                time.sleep(0.25)
            else:
                raise TimeoutError(
                    f"job still {status['results']['status']} after {JOB_TIMEOUT} s "
                    f"(progress {status['results']['progress']})"
                )
            if status["results"]["status"] != "done":
                raise RuntimeError(f"job failed: {status['results']['error']}")
            ledger = Path(values["data_dir"]) / "files" / "jobs" / f"{job_id}.json"
            state = JobState.model_validate(json.loads(ledger.read_text()))
            total = state.finished_at.timestamp() - started_at  # the moment the job turned done
            run = {"accept": accepted, **state.timings, "total": total}
            print(f"  ours run {i}: " + ", ".join(f"{k} {v:.2f}s" for k, v in run.items()), flush=True)
            if i:
                runs.append(run)
                between()
            else:
                for pid in ray_workers():
                    reset_peak(pid)
        for pid, kind in ray_workers().items():
            peaks[kind] = max(peaks.get(kind, 0.0), peak_mb(pid))
    finally:
        serve.shutdown()
        ray.shutdown()
    return runs, peaks


def phases(runs: list[dict]) -> list[str]:
    """The ledger's phase names in pipeline order (names this bench does not know last)."""
    seen = {key for run in runs for key in run} - {"accept", "total"}
    return sorted(seen, key=lambda k: (PHASE_ORDER.index(k) if k in PHASE_ORDER else len(PHASE_ORDER), k))


def cell(runs: list[dict], key: str) -> str:
    value = median(runs, key)
    return "—" if value != value else f"{value:.2f}"


def median(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def spread(runs: list[dict], key: str) -> str:
    """``median (min–max)`` of a phase over the runs."""
    values = [r[key] for r in runs if key in r]
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def rss_line(peaks: dict[str, float]) -> str:
    kinds = [*PROCESS_KINDS, *sorted(peaks.keys() - PROCESS_KINDS.keys())]
    return ", ".join(f"{kind} {peaks[kind]:.0f}" for kind in kinds if kind in peaks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(p)
    p.add_argument(
        "--warehouse-options",
        default="",
        metavar="QUERY",
        help="the warehouse URL's options for ours, e.g. partitions=2 (the peer is one query)",
    )
    args = p.parse_args()

    from actors.config.settings import load_settings
    from actors.runtime.priority import BACKGROUND, workers_at_normal_priority
    from serve_app.front import use_in_proxy

    # Everything measured runs at one priority: the peer here, and our Ray (its workers inherit
    # this niceness; our consumer and render workers would lower themselves to it anyway), so a
    # busy neighbour on the shared machine slows both sides alike.
    os.nice(BACKGROUND)
    workers_at_normal_priority()
    use_in_proxy()
    path, about = data(args)
    data_dir = Path(tempfile.mkdtemp(prefix="job_bench_"))
    options = f"?{args.warehouse_options}" if args.warehouse_options else ""
    values = {"data_dir": str(data_dir), "warehouse_url": f"duckdb://{path}{options}", "jwt_secret": SECRET}
    settings = load_settings(**values)

    peer_runs = []

    def peer() -> None:
        run = peer_job(settings, data_dir / "peer.xlsx")
        print("  peer run: " + ", ".join(f"{k} {v:.2f}s" for k, v in run.items()), flush=True)
        peer_runs.append(run)

    peer_job(settings, data_dir / "peer.xlsx")  # warm-up, not counted
    reset_peak()
    ours, peaks = our_jobs(values, args.repeat, between=peer)
    peer_peak = peak_mb()

    columns = ["accept", *phases(ours), "total", "write"]
    lines = [
        f"## Whole job, {args.courses:,} courses ({args.shape} data), medians of {args.repeat}\n",
        machine() + ".",
        "Data: " + "; ".join(about) + ".\n",
        "| seconds | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
        "| ours: HTTP → queue → consumer → render tasks (2 CPUs) → file"
        f"{f' ({args.warehouse_options})' if options else ''} | " + " | ".join(cell(ours, k) for k in columns) + " |",
        "| peer: one warm process, DuckDB + rustpy-xlsxwriter | "
        + " | ".join(cell(peer_runs, k) for k in columns)
        + " |",
        "",
        f"**speed-up of the whole job: {median(peer_runs, 'total') / median(ours, 'total'):.2f}×** "
        f"(peer total / ours total; ours includes HTTP, queueing, status polling and storing the file). "
        f"Totals, median (min–max): ours {spread(ours, 'total')} s, peer {spread(peer_runs, 'total')} s.",
        "",
        f"Ours' prepare phase (ordering the report) is {median(ours, 'prepare') / median(ours, 'total'):.1%} "
        f"of its total ({cell(ours, 'prepare')} of {cell(ours, 'total')} s, medians).",
        "",
        f"Peak RSS over the timed runs, MB (largest process of each kind): {rss_line(peaks)}; "
        f"peer process {peer_peak:.0f} (the bench process, also Ray's driver).",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"job_bench{'' if args.shape == 'catalogue' else '_' + args.shape}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
