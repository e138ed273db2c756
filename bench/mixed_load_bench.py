"""Mixed load: one 1,000,000-course institution's report while 30 small institutions ask for
theirs, against the same service running each job alone.

    .venv/bin/python bench/mixed_load_bench.py                       # 1M + 30 small, 2 rounds
    .venv/bin/python bench/mixed_load_bench.py --baseline <commit>   # also that commit's code, side by side
    .venv/bin/python bench/mixed_load_bench.py --courses 100000 --repeat 1   # smoke

The warehouse is bench/synthetic.py's realistic catalogue with ``--small`` small institutions
(50× smaller than the big one, then halving: a few mid-sized, most tiny). Each code version runs
in a fresh process with its own Ray (2 CPUs) and the real Serve app, driven over HTTP, after a
warm-up. It measures, in this order:

- **idle**: each small institution's report alone, one after the other (request → ``done``);
- **alone**: the big report alone, ``--repeat`` times;
- **loaded**: the big report, then 1 s later the 30 small ones arriving evenly over ``--spread``
  seconds, ``--repeat`` rounds; each small report's request → ``done``, the big one's, and jobs
  drained per minute (all 31 from the first request to the last ``done``).

Times are the ledger's ``finished_at`` minus the moment the request was sent (same clock), so
the status polls (ledger reads every 0.1 s) do not round them. ``--baseline`` runs the same
bench on a git worktree of that commit (the code before a change), so "today" and "now" are
measured side by side in one run; the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789-0123456789-abcdef"
APP_NAME = "catalog-report"
BIG = 1


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def child(args) -> dict:
    """One code version's measurements (run in its own process: one Ray per process)."""
    sys.path.insert(0, str(args.code))
    sys.path.insert(1, str(ROOT))
    import httpx
    from ray import serve

    try:  # the code's layout since actors/ was grouped into packages
        from actors.config.settings import load_settings
        from actors.job.ledger import Ledger
        from actors.runtime.priority import workers_at_normal_priority
        from actors.storage import open_storage

        def open_ledger(settings):
            return Ledger(open_storage(settings.storage_url, settings.links))
    except ImportError:  # a --baseline commit from before
        from actors.ledger import Ledger
        from actors.niceness import workers_at_normal_priority
        from actors.settings import load_settings
        from actors.storage import open_storage

        def open_ledger(settings):
            return Ledger(open_storage(settings))

    from bench.job_bench import free_port, start_ray
    from bench.synthetic import PERIOD
    from serve_app.app import build_app
    from serve_app.auth import mint_token
    from serve_app.front import use_in_proxy

    workers_at_normal_priority()
    use_in_proxy()
    data_dir = Path(tempfile.mkdtemp(prefix="mixed_bench_"))
    values = {"data_dir": str(data_dir), "warehouse_url": f"duckdb://{args.warehouse}", "jwt_secret": SECRET}
    ledger = open_ledger(load_settings(**values))
    start_ray()
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(values), name=APP_NAME, route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    small = list(range(BIG + 1, BIG + 1 + args.small))
    tokens = {i: mint_token(SECRET, i, 7, "demo", 7200) for i in [BIG, *small]}
    params = {"start_date": PERIOD[0].isoformat(), "end_date": PERIOD[1].isoformat()}

    def request(institution: int) -> tuple[str, float]:
        sent = time.time()
        r = httpx.get(
            f"{base}/institution/reports/catalog",
            params=params,
            timeout=60,
            headers={"Authorization": f"Bearer {tokens[institution]}"},
        )
        r.raise_for_status()
        return r.json()["results"]["id"], sent

    def wait(jobs: list[tuple[str, float]]) -> list[float]:
        """Each job's request → done, in seconds (the ledger's finished_at)."""
        deadline, took = time.monotonic() + 900, {}
        while len(took) < len(jobs):
            for job_id, sent in jobs:
                if job_id not in took and (found := ledger.get(job_id)) and found[0].status.value in ("done", "failed"):
                    if found[0].status.value != "done":
                        raise RuntimeError(f"job {job_id} failed: {found[0].error}")
                    took[job_id] = found[0].finished_at.timestamp() - sent
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(jobs) - len(took)} jobs not done")
            time.sleep(0.1)
        return [took[job_id] for job_id, _ in jobs]

    out: dict = {"idle": [], "alone": [], "rounds": []}
    try:
        wait([request(i) for i in small[:3]] + [request(BIG)])  # warm-up, not counted
        for i in small:
            out["idle"] += wait([request(i)])
        print(
            f"  idle small reports: p50 {statistics.median(out['idle']):.2f} s, p95 {p95(out['idle']):.2f} s",
            flush=True,
        )
        for _ in range(args.repeat):
            out["alone"] += wait([request(BIG)])
            print(f"  big report alone: {out['alone'][-1]:.2f} s", flush=True)
        for _ in range(args.repeat):
            big = request(BIG)
            time.sleep(1.0)
            smalls: list[tuple[str, float]] = []
            gap = args.spread / len(small)

            def arrive():
                for i in small:
                    smalls.append(request(i))
                    time.sleep(gap)

            arrivals = threading.Thread(target=arrive)
            arrivals.start()
            arrivals.join()
            small_took = wait(smalls)
            [big_took] = wait([big])
            ends = [sent + took for (_, sent), took in zip([big, *smalls], [big_took, *small_took], strict=True)]
            drained = (1 + len(smalls)) / (max(ends) - big[1]) * 60
            out["rounds"].append({"small": small_took, "big": big_took, "per_minute": drained})
            print(
                f"  loaded: small p50 {statistics.median(small_took):.2f} s, p95 {p95(small_took):.2f} s; "
                f"big {big_took:.2f} s; {drained:.1f} jobs/min",
                flush=True,
            )
    finally:
        serve.shutdown()
        import ray

        ray.shutdown()
    return out


def run_version(label: str, code: Path, args) -> dict:
    print(f"== {label} ({code})", flush=True)
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--code",
        str(code),
        "--warehouse",
        str(args.warehouse),
        "--small",
        str(args.small),
        "--repeat",
        str(args.repeat),
        "--spread",
        str(args.spread),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=code)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    print("\n".join(line for line in proc.stdout.splitlines() if not line.startswith("RESULT ")), flush=True)
    if proc.returncode or not lines:
        raise SystemExit(f"{label}: exit {proc.returncode}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def worktree(commit: str) -> Path:
    path = ROOT / "bench" / "out" / f"worktree-{commit[:12]}"
    if not path.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def table(results: dict[str, dict], args) -> str:
    rows = [
        "| code | small idle p50 / p95 s | small loaded p50 / p95 s | loaded ÷ idle p95 (target ≤ 3) "
        "| big alone s | big loaded s (÷ alone) | jobs drained / min |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        idle, loaded = r["idle"], [t for rnd in r["rounds"] for t in rnd["small"]]
        alone = statistics.median(r["alone"])
        big_loaded = statistics.median(rnd["big"] for rnd in r["rounds"])
        per_minute = statistics.median(rnd["per_minute"] for rnd in r["rounds"])
        rows.append(
            f"| {label} | {statistics.median(idle):.2f} / {p95(idle):.2f} | "
            f"{statistics.median(loaded):.2f} / {p95(loaded):.2f} | {p95(loaded) / p95(idle):.1f}× | "
            f"{alone:.2f} | {big_loaded:.2f} ({big_loaded / alone:.2f}×) | {per_minute:.1f} |"
        )
    if len(results) == 2:
        (now, a), (before, b) = results.items()
        rows.append("")
        rows.append(
            f"Big report alone, {now} ÷ {before}: "
            f"{statistics.median(a['alone']) / statistics.median(b['alone']):.2f}× (target ≤ 1.15)"
        )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--courses", type=int, default=1_000_000, help="the big institution's report rows")
    p.add_argument("--small", type=int, default=30, help="small institutions, one report each")
    p.add_argument("--repeat", type=int, default=2, help="rounds of 'alone' and of 'loaded'")
    p.add_argument("--spread", type=float, default=10.0, help="seconds over which the small requests arrive")
    p.add_argument("--baseline", help="a commit whose code is measured too, side by side")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--code", type=Path, default=ROOT, help=argparse.SUPPRESS)
    p.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return

    sys.path.insert(0, str(ROOT))
    from bench.job_bench import machine
    from bench.synthetic import warehouse

    args.warehouse, made = warehouse(args.courses, small=args.small)
    if made:
        print(f"warehouse generated in {made:.0f} s: {args.warehouse}", flush=True)
    started = time.time()
    results = {"now": run_version("now", ROOT, args)}
    if args.baseline:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline], check=True, capture_output=True, text=True
        ).stdout.strip()
        tree = worktree(commit)
        try:
            results[f"before ({commit})"] = run_version(f"before ({commit})", tree, args)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\n## Mixed load, {when}\n\n{machine()}. Warehouse: {args.courses:,}-course institution + "
        f"{args.small} small ones ({args.warehouse.name}); {args.repeat} rounds; small requests over "
        f"{args.spread:.0f} s; {(time.time() - started) / 60:.1f} min.\n\n{table(results, args)}\n"
    )


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
