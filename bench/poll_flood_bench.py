"""Poll flood: one tenant's status polling against another tenant's, on the real service.

    .venv/bin/python bench/poll_flood_bench.py                 # 1,500 polls at 350 at once, 3 floods
    .venv/bin/python bench/poll_flood_bench.py --compare       # also without the proxy's fair share
    .venv/bin/python bench/poll_flood_bench.py --quick         # smoke: 300 polls at 100, 1 flood

What is measured, all over loopback (127.0.0.1), against the Serve app started the way
``bench/backpressure_bench.py`` starts it (its own local Ray, 2 CPUs, the consumer running):

* idle: another tenant polls its own job's status one request at a time (250 ms pauses, a page
  polling within its budget), and a health checker GETs ``/healthz`` (250 ms pauses);
* flood: one tenant sends ``--polls`` status polls for its job with ``--concurrency`` in flight
  (one token, as a runaway client would), from a process of its own, so the others' timings do
  not include the flooding client's own event loop; meanwhile the other tenant and the health
  checker go on as when idle, until the flood is answered. ``--repeat`` floods, bounded by
  ``--deadline``.

The target (issue 11): the other tenant's p99 under the flood within 3x of its idle p99. With
``--compare`` the same runs on a Ray whose proxy does not load ``serve_app.front`` (no fair
share per token; the app's own per-institution read budget still applies), to show what the
proxy-side share buys. Traffic is bounded in count (polls) and time (deadline), to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.backpressure_bench import (  # noqa: E402 (after the path is set)
    APP_NAME,
    OUT,
    PARAMS,
    SECRET,
    _client,
    free_port,
    lat,
    pct,
    tokens,
    wait_until_health,
    warehouse,
)

FLOODER, OTHER = 1, 2  # institutions of the demo warehouse
PAUSE_OTHER, PAUSE_HEALTH = 0.25, 0.25  # a polling page; a load balancer probing


@dataclass
class Run:
    label: str
    idle_other: list[float] = field(default_factory=list)
    idle_health: list[float] = field(default_factory=list)
    flood_other: list[float] = field(default_factory=list)
    flood_health: list[float] = field(default_factory=list)
    flood: list[tuple[float, int | str]] = field(default_factory=list)  # (seconds, status) per poll
    walls: list[float] = field(default_factory=list)
    bad_probes: Counter = field(default_factory=Counter)  # non-200 answers to the other tenant / health


async def _get(client, url: str, token: str | None) -> tuple[float, int | str]:
    """Seconds and status; a 429 says who refused it: the proxy's share per token or the app's
    budget per institution."""
    started = time.perf_counter()
    try:
        r = await client.get(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        status: int | str = r.status_code
        if status == 429:
            status = "429 proxy share" if r.json()["message"].startswith("at most") else "429 app budget"
    except Exception as exc:
        status = type(exc).__name__
    return time.perf_counter() - started, status


async def _probe(
    client,
    url: str,
    token: str | None,
    pause: float,
    stop: asyncio.Event,
    out: list[float],
    bad: Counter,
    limit: int | None = None,
) -> None:
    """One request at a time until ``stop`` (or ``limit`` answers): seconds of the 200s."""
    while not stop.is_set() and (limit is None or len(out) < limit):
        seconds, status = await _get(client, url, token)
        if status == 200:
            out.append(seconds)
        else:
            bad[str(status)] += 1
        try:
            await asyncio.wait_for(stop.wait(), pause)
        except TimeoutError:
            pass


async def _measure(base: str, toks: dict[int, str], jobs: dict[int, str], args, run: Run) -> None:
    status_url = {i: f"{base}/institution/reports/jobs/{jobs[i]}" for i in jobs}
    async with _client(2, 30.0) as calm:
        never = asyncio.Event()
        await _probe(
            calm, status_url[OTHER], toks[OTHER], PAUSE_OTHER, never, run.idle_other, run.bad_probes, limit=args.idle
        )
        await _probe(
            calm, base + "/healthz", None, PAUSE_HEALTH, never, run.idle_health, run.bad_probes, limit=args.idle // 2
        )
    for _ in range(args.repeat):
        stop = asyncio.Event()
        async with _client(2, 60.0) as calm:
            probes = [
                asyncio.create_task(
                    _probe(calm, status_url[OTHER], toks[OTHER], PAUSE_OTHER, stop, run.flood_other, run.bad_probes)
                ),
                asyncio.create_task(
                    _probe(calm, base + "/healthz", None, PAUSE_HEALTH, stop, run.flood_health, run.bad_probes)
                ),
            ]
            results, wall = await asyncio.to_thread(_flood, status_url[FLOODER], toks[FLOODER], args)
            run.flood += results
            run.walls.append(wall)
            stop.set()
            await asyncio.gather(*probes)
        print(
            f"  {run.label}: flood answered in {run.walls[-1]:.1f}s; other tenant meanwhile "
            f"{lat(run.flood_other[-20:])} ms (last 20)",
            flush=True,
        )
        await asyncio.sleep(1)


def _flood(url: str, token: str, args) -> tuple[list[tuple[float, int | str]], float]:
    """The flooding tenant, in a process of its own; its answers and how long they all took."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_flood_in_process, (url, token, args.polls, args.concurrency, args.deadline))


def _flood_in_process(url: str, token: str, polls: int, concurrency: int, deadline: float):
    async def go():
        gate = asyncio.Semaphore(concurrency)
        out: list[tuple[float, int | str]] = []

        async def poll(client) -> None:
            async with gate:
                out.append(await _get(client, url, token))

        async with _client(concurrency, 60.0) as client:
            started = time.perf_counter()
            _, pending = await asyncio.wait([asyncio.create_task(poll(client)) for _ in range(polls)], timeout=deadline)
            wall = time.perf_counter() - started
            for task in pending:
                task.cancel()
        return out, wall

    return asyncio.run(go())


def run_service(args, front: bool) -> Run:
    import httpx
    import ray
    from ray import serve

    from actors.runtime.priority import workers_at_normal_priority
    from serve_app.app import build_app
    from serve_app.front import PROXY_CALLBACK_ENV, use_in_proxy

    label = "fair share in the proxy" if front else "proxy without serve_app.front"
    data_dir = Path(tempfile.mkdtemp(prefix="flood_"))
    values = {
        "data_dir": str(data_dir),
        "warehouse_url": f"duckdb://{warehouse(50)}",
        "jwt_secret": SECRET,
        "render_workers": 1,
    }
    for var in ("RAY_ADDRESS", "RAY_GCS_SERVER_PORT", PROXY_CALLBACK_ENV):
        os.environ.pop(var, None)
    workers_at_normal_priority()
    if front:
        use_in_proxy()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    assert not ray.get_runtime_context().gcs_address.endswith(":6379")
    port = free_port()
    run = Run(label)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(values), name=APP_NAME, route_prefix="/")
        base = f"http://127.0.0.1:{port}"
        wait_until_health(base, 60)
        toks = tokens(range(FLOODER, OTHER + 1))
        jobs = {}
        for i in (FLOODER, OTHER):  # each tenant polls a job of its own, run to the end first
            r = httpx.get(
                base + "/institution/reports/catalog",
                params=PARAMS,
                headers={"Authorization": f"Bearer {toks[i]}"},
                timeout=30,
                trust_env=False,
            )
            jobs[i] = r.json()["results"]["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            httpx.get(
                f"{base}/institution/reports/jobs/{jobs[i]}",
                headers={"Authorization": f"Bearer {toks[i]}"},
                timeout=30,
                trust_env=False,
            ).json()["results"]["status"]
            not in ("done", "failed")
            for i in jobs
        ):
            time.sleep(0.5)
        asyncio.run(_measure(base, toks, jobs, args, run))
    finally:
        serve.shutdown()
        ray.shutdown()
        os.environ.pop(PROXY_CALLBACK_ENV, None)
        shutil.rmtree(data_dir, ignore_errors=True)
    return run


def table(args, runs: list[Run]) -> str:
    def ratio(a: list[float], b: list[float], q: float) -> str:
        return f"{pct(a, q) / pct(b, q):.2f}×" if a and b else "—"

    def counts(run: Run) -> str:
        seen = Counter(str(s) for _, s in run.flood)
        return ", ".join(f"{n}× {s}" for s, n in sorted(seen.items()))

    rows = [
        (
            "another tenant's status poll, idle: p50 / p99 / max ms (n)",
            [f"{lat(r.idle_other)} ({len(r.idle_other)})" for r in runs],
        ),
        (
            "**another tenant's status poll during the flood**: p50 / p99 / max ms (n)",
            [f"{lat(r.flood_other)} ({len(r.flood_other)})" for r in runs],
        ),
        (
            "**flood / idle, another tenant's p99** (target ≤ 3×); p50",
            [f"**{ratio(r.flood_other, r.idle_other, 99)}**; {ratio(r.flood_other, r.idle_other, 50)}" for r in runs],
        ),
        ("GET /healthz, idle: p50 / p99 / max ms (n)", [f"{lat(r.idle_health)} ({len(r.idle_health)})" for r in runs]),
        (
            "**GET /healthz during the flood**: p50 / p99 / max ms (n); p99 ratio",
            [
                f"{lat(r.flood_health)} ({len(r.flood_health)}); {ratio(r.flood_health, r.idle_health, 99)}"
                for r in runs
            ],
        ),
        (
            "non-200 answers to the other tenant and to /healthz",
            [", ".join(f"{n}× {s}" for s, n in r.bad_probes.items()) or "0" for r in runs],
        ),
        (f"the flood's answers ({args.repeat} × {args.polls} polls)", [counts(r) for r in runs]),
        ("the flood's latency: p50 / p99 / max ms", [lat([s for s, _ in r.flood]) for r in runs]),
        ("flood answered in (s, each flood)", [" / ".join(f"{w:.1f}" for w in r.walls) for r in runs]),
    ]
    lines = [
        (
            f"## Poll flood: one token, {args.polls} status polls at {args.concurrency} at once, {args.repeat} floods "
            f"(2 CPUs, loopback, {os.cpu_count()} cores on the machine)\n"
        ),
        "| | " + " | ".join(r.label for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--polls", type=int, default=1500)
    p.add_argument("--concurrency", type=int, default=350)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--idle", type=int, default=100, help="sequential polls for the idle baseline")
    p.add_argument("--deadline", type=float, default=120.0, help="seconds one flood may take at most")
    p.add_argument("--compare", action="store_true", help="also run without the proxy's fair share")
    p.add_argument("--quick", action="store_true", help="smoke run: 300 polls at 100, 1 flood, 40 idle")
    args = p.parse_args()
    if args.quick:
        args.polls, args.concurrency, args.repeat, args.idle = 300, 100, 1, 40
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runs = [run_service(args, front=True)]
    if args.compare:
        runs.append(run_service(args, front=False))
    text = table(args, runs) + (
        f"\n\nMachine load average (1 min): {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores."
    )
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "poll_flood_bench_quick.md" if args.quick else "poll_flood_bench.md"
    (OUT / name).write_text(text + "\n")
    print(f"\n(total bench time {time.perf_counter() - started:.0f}s; written to bench/out/{name})")


if __name__ == "__main__":
    main()
