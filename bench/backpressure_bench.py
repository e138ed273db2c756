"""Backpressure: a burst of report requests from many institutions at once, against the real
service (Ray Serve app + job consumer) and a plain uvicorn FastAPI app doing the same request path.

    .venv/bin/python bench/backpressure_bench.py                     # 50 × 4 requests, 3 bursts
    .venv/bin/python bench/backpressure_bench.py --quick             # smoke: 10 × 2, 1 burst
    .venv/bin/python bench/backpressure_bench.py --institutions 50 --per-institution 4 --repeat 3

What is measured, all over loopback (127.0.0.1), with one httpx.AsyncClient per phase:

* enqueue latency (request sent → ``200`` with a job id parsed), p50 / p99 / max:
  - idle: ``--baseline`` sequential requests; against Serve each next request waits until the
    previous job is ``done``, so the consumer and render workers are really idle;
  - burst: every institution sends ``--per-institution`` requests back to back, all institutions
    at once, at most ``--concurrency`` in flight; ``--repeat`` bursts, percentiles over all of them.
* queue drain (Serve only): first request of a burst → last of its jobs ``done`` (the ledger files
  ``<data_dir>/files/jobs/<id>.json`` are polled every 50 ms, then every job is checked once more
  through ``GET /institution/reports/jobs/{id}``).
* responsiveness of the rest of the API: one client polls a job's status (100 ms pauses) during
  each burst and, for Serve, until the queue is drained; idle status and /healthz latency too.
* accepting new jobs while a backlog is worked (Serve): once a burst is answered, one more client
  requests reports (100 ms pauses, 20 other institutions in turn) until that burst's jobs are
  done; compared with the idle enqueue latency.
* CPU time per process while a burst is answered (/proc/<pid>/stat), divided by the 200 answers.
* RSS of the Serve processes (``/proc/<pid>/status`` VmRSS sampled every 50 ms, and VmHWM) before
  the first burst, at the peak of any burst, after the last drain.

The reference is ``bench/plain_fastapi_app.py`` under uvicorn in a subprocess, measured first, with
Ray not yet started. Jobs are small: a 50-institution DuckDB warehouse (~40 courses each),
cached in bench/out/cache. The machine is shared and has 2 cores: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
SECRET = "bench-secret-0123456789-0123456789-abcdef"
PARAMS = {"start_date": "2025-01-01", "end_date": "2026-12-31"}
CATALOG = "/institution/reports/catalog"
APP_NAME = "catalog-report"
# Serve processes whose memory is watched: label → what their /proc cmdline contains.
WATCHED = {
    "JobConsumer replica": f"ServeReplica:{APP_NAME}:JobConsumer",
    "ReportsAPI replica": f"ServeReplica:{APP_NAME}:ReportsAPI",
    "Serve HTTP proxy": "ProxyActor",
    "task workers (sum; render chunks run there)": "ray::IDLE",  # idle when looked up, after the warm-up
    "rate limiter actor": "ray::RateLimiter",
}
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def lat(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{pct(values, 50) * 1e3:.1f} / {pct(values, 99) * 1e3:.1f} / {max(values) * 1e3:.1f}"


def warehouse(institutions: int) -> Path:
    from actors.warehouse.demo import generate

    n = max(50, institutions)
    dims = {"institutions": n, "courses": 40 * n, "schools": 2 * n, "views": 400 * n, "enrollments": 100 * n}
    path = OUT / "cache" / ("warehouse_bp_" + "_".join(str(v) for v in dims.values()) + ".duckdb")
    if not path.exists():
        started = time.perf_counter()
        generate(path, **dims)
        print(f"warehouse {path.name} generated in {time.perf_counter() - started:.1f}s", flush=True)
    return path


def tokens(institutions: int | range) -> dict[int, str]:
    from serve_app.auth import mint_token

    ids = range(1, institutions + 1) if isinstance(institutions, int) else institutions
    return {i: mint_token(SECRET, i, 1000 + i, f"inst{i}", 3600) for i in ids}


# ---------------------------------------------------------------------------------------------
# load generation


@dataclass
class Result:
    institution: int
    started: float  # perf_counter
    seconds: float
    status: int | str  # HTTP status, or the exception's name
    job_id: str | None = None


async def _one(client, base: str, token: str, institution: int) -> Result:
    import httpx

    started = time.perf_counter()
    try:
        r = await client.get(base + CATALOG, params=PARAMS, headers={"Authorization": f"Bearer {token}"})
        job_id = r.json()["results"]["id"] if r.status_code == 200 else None
        return Result(institution, started, time.perf_counter() - started, r.status_code, job_id)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return Result(institution, started, time.perf_counter() - started, type(exc).__name__)


def _client(concurrency: int, timeout: float):
    import httpx

    return httpx.AsyncClient(
        timeout=timeout,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


PROBE_PAUSE = 0.1


async def _probe(client, url: str, token: str, stop: asyncio.Event, samples: list) -> None:
    """One request at a time (then a 100 ms pause) until ``stop``: is the rest of the API still quick?"""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            status: int | str = r.status_code
        except Exception as exc:
            status = type(exc).__name__
        samples.append((started, time.perf_counter() - started, status))
        try:
            await asyncio.wait_for(stop.wait(), PROBE_PAUSE)
        except TimeoutError:
            pass


async def _enqueue_probe(client, base: str, toks: dict[int, str], stop: asyncio.Event, samples: list) -> None:
    """One report request at a time (then a 100 ms pause) until ``stop``, institutions in turn
    (none of them near its rate limit): does a backlog of jobs slow down accepting new ones?"""
    institutions = sorted(toks)
    k = 0
    while not stop.is_set():
        inst = institutions[k % len(institutions)]
        k += 1
        samples.append(await _one(client, base, toks[inst], inst))
        try:
            await asyncio.wait_for(stop.wait(), PROBE_PAUSE)
        except TimeoutError:
            pass


PROBE_INSTITUTIONS = range(10_001, 10_021)  # not in the warehouse: each of their jobs is an empty report


@dataclass
class Burst:
    results: list[Result]
    answered: float  # perf_counter when the last request of the burst was answered
    probes: list[tuple[float, float, int | str]]  # (started, seconds, status) of the status poller
    drained: tuple[float, Counter] | None = None  # wait_done's answer
    checked: Counter = field(default_factory=Counter)  # final statuses through the API
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process while the burst was answered
    late: list[Result] = field(default_factory=list)  # report requests sent while the queue drained

    @property
    def first(self) -> float:
        return min(r.started for r in self.results)

    @property
    def wall(self) -> float:
        return self.answered - self.first


async def _burst(
    base: str,
    toks: dict[int, str],
    per_institution: int,
    concurrency: int,
    probe: tuple[str, str],
    drain,
    cpu_pids: dict[str, list[int]],
    timeout: float,
    deadline: float,
) -> Burst:
    """Every institution sends its requests back to back, all institutions at once; meanwhile a
    poller asks for one job's status; then (``drain``) the burst's jobs are waited for while
    one more client keeps requesting reports."""
    gate = asyncio.Semaphore(concurrency)
    results: list[Result] = []
    probes: list = []
    stop = asyncio.Event()

    async def institution(client, inst: int, token: str) -> None:
        for _ in range(per_institution):
            async with gate:
                results.append(await _one(client, base, token, inst))

    async with _client(concurrency, timeout) as client, _client(2, timeout) as probe_client:
        cpu_before = cpu_seconds(cpu_pids)
        poller = asyncio.create_task(_probe(probe_client, base + probe[0], probe[1], stop, probes))
        tasks = [asyncio.create_task(institution(client, i, t)) for i, t in toks.items()]
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        cpu_after = cpu_seconds(cpu_pids)
        cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
        answered = max((r.started + r.seconds for r in results), default=time.perf_counter())
        for task in pending:
            task.cancel()
        if pending:
            print(f"  burst deadline ({deadline:.0f}s) hit: {len(pending)} institutions cut short", flush=True)
        late: list[Result] = []
        drained = None
        if drain:
            draining = asyncio.Event()
            prober = asyncio.create_task(_enqueue_probe(probe_client, base, tokens(PROBE_INSTITUTIONS), draining, late))
            drained = await asyncio.to_thread(drain, [r.job_id for r in results if r.job_id])
            draining.set()
            await prober
        stop.set()
        await poller
    return Burst(results, answered, probes, drained, cpu=cpu, late=late)


def burst(
    base: str,
    toks: dict[int, str],
    per_institution: int,
    concurrency: int,
    probe: tuple[str, str],
    drain=None,
    cpu_pids: dict[str, list[int]] | None = None,
    timeout: float = 30.0,
    deadline: float = 120.0,
) -> Burst:
    return asyncio.run(
        _burst(base, toks, per_institution, concurrency, probe, drain, cpu_pids or {}, timeout, deadline)
    )


async def _sequential(base: str, toks: dict[int, str], n: int, after_each=None) -> list[Result]:
    results = []
    institutions = sorted(toks)
    async with _client(1, 30.0) as client:
        for k in range(n):
            inst = institutions[k % len(institutions)]
            r = await _one(client, base, toks[inst], inst)
            results.append(r)
            if after_each is not None:
                await asyncio.to_thread(after_each, r)
    return results


def sequential(base: str, toks: dict[int, str], n: int, after_each=None) -> list[Result]:
    return asyncio.run(_sequential(base, toks, n, after_each))


async def _gets(url: str, token: str, n: int) -> list[float]:
    """``n`` sequential GETs; seconds of those answered 200."""
    out = []
    async with _client(1, 30.0) as client:
        for _ in range(n):
            started = time.perf_counter()
            r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            if r.status_code == 200:
                out.append(time.perf_counter() - started)
    return out


def idle_gets(base: str, status_path: str, token: str, n: int) -> dict[str, list[float]]:
    return {
        "status": asyncio.run(_gets(base + status_path, token, n)),
        "healthz": asyncio.run(_gets(base + "/healthz", token, n)),
    }


async def _statuses(base: str, toks: dict[int, str], results: list[Result], concurrency: int) -> Counter:
    gate = asyncio.Semaphore(concurrency)

    async def one(client, r: Result) -> str:
        async with gate:
            try:
                resp = await client.get(
                    f"{base}/institution/reports/jobs/{r.job_id}",
                    headers={"Authorization": f"Bearer {toks[r.institution]}"},
                )
                return resp.json()["results"]["status"] if resp.status_code == 200 else f"HTTP {resp.status_code}"
            except Exception as exc:
                return type(exc).__name__

    async with _client(concurrency, 30.0) as client:
        return Counter(await asyncio.gather(*(one(client, r) for r in results if r.job_id)))


def statuses(base, toks, results, concurrency) -> Counter:
    return asyncio.run(_statuses(base, toks, results, concurrency))


def wait_until_health(base: str, seconds: float) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not come up in {seconds:.0f}s")


# ---------------------------------------------------------------------------------------------
# drain and memory


def wait_done(jobs_dir: Path, job_ids: list[str], timeout: float, poll: float = 0.05) -> tuple[float, Counter]:
    """Poll the ledger until every job is done or failed; (perf_counter when the last was seen, final
    statuses). Jobs are taken in publish order, so each round reads pending records only up to the
    third unfinished one: reading all of them every 50 ms would cost the 2 cores real CPU."""
    pending = list(dict.fromkeys(job_ids))
    final: Counter = Counter()
    deadline = time.monotonic() + timeout
    last = time.perf_counter()
    while pending and time.monotonic() < deadline:
        unfinished: list[str] = []
        for k, job_id in enumerate(pending):
            if len(unfinished) >= 3:
                unfinished += pending[k:]
                break
            try:
                status = json.loads((jobs_dir / f"{job_id}.json").read_bytes())["status"]
            except (FileNotFoundError, ValueError, KeyError):
                status = None
            if status in ("done", "failed"):
                final[status] += 1
                last = time.perf_counter()
            else:
                unfinished.append(job_id)
        pending = unfinished
        if pending:
            time.sleep(poll)
    if pending:
        final["not finished in time"] = len(pending)
    return last, final


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """utime + stime per label (summed over its pids), plus this process and the machine's busy time."""
    out = {}
    for label, ps in pids.items():
        total = 0
        for pid in ps:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
        out[label] = total / TICK
    mine = os.times()
    out["bench process (load generator)"] = mine.user + mine.system
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    out["machine busy"] = (sum(cpu) - cpu[3] - cpu[4]) / TICK  # user..steal, less idle and iowait
    out["wall"] = time.perf_counter()
    return out


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5]] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def _descendants(root: int) -> set[int]:
    """Pids below ``root``: the machine may run other Ray clusters, whose replicas look the same."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def find_pids(patterns: dict[str, str]) -> dict[str, list[int]]:
    """Processes of this bench's Ray instance (started by this process) whose cmdline matches."""
    found: dict[str, list[int]] = {label: [] for label in patterns}
    for pid in sorted(_descendants(os.getpid())):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for label, pattern in patterns.items():
            if pattern in cmd:
                found[label].append(pid)
    return found


@dataclass
class Memory:
    """RSS per label (summed over its pids), in kB: now, peak of the samples, VmHWM."""

    pids: dict[str, list[int]]
    peak: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def now(self, key: str = "VmRSS") -> dict[str, int]:
        return {label: sum(_status_kb(p).get(key, 0) for p in pids) for label, pids in self.pids.items()}

    def start(self, interval: float = 0.05) -> None:
        self._stop.clear()

        def run():
            while not self._stop.is_set():
                for label, kb in self.now().items():
                    self.peak[label] = max(self.peak.get(label, 0), kb)
                self._stop.wait(interval)

        self._thread = threading.Thread(target=run, daemon=True, name="rss-sampler")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def mb(kb: int | None) -> str:
    return "—" if not kb else f"{kb / 1024:.0f}"


# ---------------------------------------------------------------------------------------------
# the two servers


def _idle(base: str, toks: dict[int, str], n: int, after_each=None) -> dict:
    """Sequential report requests, then sequential status polls and health checks."""
    idle = sequential(base, toks, n, after_each)
    first = next(r for r in idle if r.job_id)
    probe = (f"/institution/reports/jobs/{first.job_id}", toks[first.institution])
    return {"idle": idle, "probe": probe, **idle_gets(base, probe[0], probe[1], n)}


def _show(name: str, k: int, b: Burst) -> None:
    line = (
        f"  {name} burst {k + 1}: {len(b.results)} requests answered in {b.wall:.2f}s, "
        f"{lat([r.seconds for r in b.results])} ms, statuses {dict(Counter(r.status for r in b.results))}; "
        f"status poll {lat([x[1] for x in b.probes])} ms"
    )
    if b.drained:
        line += f"; drained in {b.drained[0] - b.first:.1f}s {dict(b.drained[1])}"
    print(line, flush=True)


def run_uvicorn(args, toks: dict[int, str]) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="bp_plain_"))
    port = free_port()
    env = {
        **os.environ,
        "BP_DATA_DIR": str(data_dir),
        "BP_JWT_SECRET": SECRET,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.plain_fastapi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_health(base, 30)
        mem = Memory({"uvicorn process": [proc.pid]})
        sequential(base, {i: toks[i] for i in list(toks)[:5]}, 5)  # warm-up, not counted
        out = _idle(base, toks, args.baseline)
        out["bursts"] = []
        print(f"  uvicorn idle: {lat([r.seconds for r in out['idle']])} ms (p50/p99/max)", flush=True)
        mem.start()
        for k in range(args.repeat):
            b = burst(
                base,
                toks,
                args.per_institution,
                args.concurrency,
                out["probe"],
                cpu_pids={"uvicorn process": [proc.pid]},
            )
            out["bursts"].append(b)
            _show("uvicorn", k, b)
            time.sleep(1)
        mem.stop()
        out["rss"] = {"peak": mem.peak, "hwm": mem.now("VmHWM")}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def run_serve(args, toks: dict[int, str], warehouse_path: Path) -> dict:
    import ray
    from ray import serve

    from actors.runtime.priority import workers_at_normal_priority
    from serve_app.app import build_app
    from serve_app.front import use_in_proxy

    data_dir = Path(tempfile.mkdtemp(prefix="bp_serve_"))
    jobs_dir = data_dir / "files" / "jobs"
    values = {
        "data_dir": str(data_dir),
        "warehouse_url": f"duckdb://{warehouse_path}",
        "jwt_secret": SECRET,
        "render_workers": 2,
    }
    for var in ("RAY_ADDRESS", "RAY_GCS_SERVER_PORT"):
        os.environ.pop(var, None)
    # address="local": a fresh instance even when another `ray start` cluster runs on this machine
    # (address=None would attach to the one named in /tmp/ray/ray_current_cluster). Workers at the
    # priority `catalog-report serve` gives them (API replicas and proxy at 0, like uvicorn and
    # the load generator here; consumer and render workers at 10), unless RAY_worker_niceness is set.
    workers_at_normal_priority()
    use_in_proxy()  # the proxy as `catalog-report serve` runs it
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    gcs = ray.get_runtime_context().gcs_address
    assert not gcs.endswith(":6379"), gcs
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(values), name=APP_NAME, route_prefix="/")
        base = f"http://127.0.0.1:{port}"
        wait_until_health(base, 60)

        # warm-up (not counted): a few jobs through the whole path, so render workers are up
        warm = sequential(base, {i: toks[i] for i in list(toks)[:5]}, 5)
        wait_done(jobs_dir, [r.job_id for r in warm if r.job_id], args.drain_timeout)

        # idle baseline: one request at a time, each after the previous job is done
        job_times: list[float] = []

        def job_finished(r: Result) -> None:
            if r.job_id:
                end, _ = wait_done(jobs_dir, [r.job_id], 60, poll=0.005)
                job_times.append(end - r.started)

        out = _idle(base, toks, args.baseline, job_finished)
        out["job_times"], out["bursts"] = job_times, []
        print(
            f"  serve idle: {lat([r.seconds for r in out['idle']])} ms (p50/p99/max); one job request→done "
            f"median {statistics.median(job_times):.3f}s",
            flush=True,
        )

        pids = find_pids(WATCHED)
        print("  watched pids: " + ", ".join(f"{k} {v}" for k, v in pids.items()), flush=True)
        mem = Memory(pids)
        out["rss_before"], out["peaks"], out["after"] = mem.now(), [], []
        for k in range(args.repeat):
            mem.peak = {}
            mem.start()
            b = burst(
                base,
                toks,
                args.per_institution,
                args.concurrency,
                out["probe"],
                drain=lambda ids: wait_done(jobs_dir, ids, args.drain_timeout),
                cpu_pids=pids,
            )
            mem.stop()
            b.checked = statuses(base, toks, b.results, args.concurrency)
            out["bursts"].append(b)
            out["peaks"].append(dict(mem.peak))
            out["after"].append(mem.now())
            _show("serve", k, b)
            print(
                f"    via API {dict(b.checked)}; peak RSS MB " + ", ".join(f"{k} {mb(v)}" for k, v in mem.peak.items()),
                flush=True,
            )
        out["rss_hwm"] = mem.now("VmHWM")
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------
# report


def cpu_per_request(bursts: list[Burst]) -> str:
    oks = sum(1 for b in bursts for r in b.results if r.status == 200) or 1
    labels = [k for k in bursts[0].cpu if k not in ("machine busy", "wall")]
    total = {k: sum(b.cpu.get(k, 0.0) for b in bursts) * 1e3 / oks for k in labels}
    short = {"render workers (sum)": "render workers", "bench process (load generator)": "load generator"}
    return ", ".join(f"{short.get(k, k)} {v:.1f}" for k, v in total.items())


def busy(bursts: list[Burst]) -> str:
    used = sum(b.cpu["machine busy"] for b in bursts)
    wall = sum(b.cpu["wall"] for b in bursts)
    return f"{100 * used / (wall * (os.cpu_count() or 1)):.0f}%"


def table(args, serve_out: dict, plain: dict) -> str:
    def ok(results: list[Result]) -> list[float]:
        return [r.seconds for r in results if r.status == 200]

    def ratio(a: list[float], b: list[float], q: float) -> str:
        return f"{pct(a, q) / pct(b, q):.2f}×" if a and b else "—"

    def ratios(a: list[float], b: list[float]) -> str:
        return f"p50 {ratio(a, b, 50)}, p99 {ratio(a, b, 99)}"

    def non200(results: list[Result]) -> str:
        bad = Counter(str(r.status) for r in results if r.status != 200)
        return "0" if not bad else ", ".join(f"{n}× {s}" for s, n in sorted(bad.items()))

    sb, pb = serve_out["bursts"], plain["bursts"]
    s_all = [r for b in sb for r in b.results]
    p_all = [r for b in pb for r in b.results]
    s_idle, p_idle, s_burst, p_burst = ok(serve_out["idle"]), ok(plain["idle"]), ok(s_all), ok(p_all)
    # status poller: while the burst is being answered, and (Serve) after that until the drain ends
    s_probe_burst = [x[1] for b in sb for x in b.probes if x[0] <= b.answered and x[2] == 200]
    s_probe_drain = [x[1] for b in sb for x in b.probes if x[0] > b.answered and x[2] == 200]
    p_probe_burst = [x[1] for b in pb for x in b.probes if x[2] == 200]
    s_late = ok([r for b in sb for r in b.late])
    probe_bad = Counter(str(x[2]) for b in sb + pb for x in b.probes if x[2] != 200)
    probe_bad.update(str(r.status) for b in sb for r in b.late if r.status != 200)

    n_req = args.institutions * args.per_institution
    drains = [b.drained[0] - b.first for b in sb]
    jobs = [sum(1 for r in b.results if r.job_id) for b in sb]
    finals = sum((b.drained[1] for b in sb), Counter())
    checked = sum((b.checked for b in sb), Counter())
    s_wall = statistics.median(b.wall for b in sb)
    p_wall = statistics.median(b.wall for b in pb)
    job_t = serve_out["job_times"]
    n = args.baseline

    rows = [
        (
            f"**enqueue latency, idle**: p50 / p99 / max ms ({n} sequential; "
            "Serve: each after the previous job is done)",
            lat(s_idle),
            lat(p_idle),
            ratios(s_idle, p_idle),
        ),
        (
            (
                f"**enqueue latency, burst**: p50 / p99 / max ms ({args.institutions} institutions × "
                f"{args.per_institution} back to back, ≤{args.concurrency} in flight, {args.repeat} bursts = "
                f"{len(s_all)} requests)"
            ),
            lat(s_burst),
            lat(p_burst),
            ratios(s_burst, p_burst),
        ),
        ("burst / idle, each server against itself", ratios(s_burst, s_idle), ratios(p_burst, p_idle), ""),
        (
            f"burst answered: first request → last answer (median of {args.repeat}); requests/s",
            f"{s_wall:.2f} s; {n_req / s_wall:.0f}/s",
            f"{p_wall:.2f} s; {n_req / p_wall:.0f}/s",
            f"{s_wall / p_wall:.2f}×",
        ),
        (
            "non-200 answers to report requests (idle + bursts)",
            non200(serve_out["idle"] + s_all),
            non200(plain["idle"] + p_all),
            "",
        ),
        (
            f"job status GET, idle: p50 / p99 / max ms ({n} sequential)",
            lat(serve_out["status"]),
            lat(plain["status"]),
            ratios(serve_out["status"], plain["status"]),
        ),
        (
            "job status GET by 1 poller (100 ms pauses) during the burst: p50 / p99 / max ms (n)",
            f"{lat(s_probe_burst)} ({len(s_probe_burst)})",
            f"{lat(p_probe_burst)} ({len(p_probe_burst)})",
            ratios(s_probe_burst, p_probe_burst),
        ),
        (
            "job status GET by 1 poller after the burst is answered, while the queue drains (n)",
            f"{lat(s_probe_drain)} ({len(s_probe_drain)})",
            "—",
            "",
        ),
        (
            "**report request by 1 client after the burst is answered, while the queue drains**: "
            "p50 / p99 / max ms (n)",
            f"{lat(s_late)} ({len(s_late)}); {ratios(s_late, s_idle)} of idle",
            "—",
            "",
        ),
        (
            "non-200 status polls, and report requests while draining",
            ", ".join(f"{v}× {k}" for k, v in probe_bad.items()) or "0",
            "",
            "",
        ),
        (
            f"GET /healthz, idle: p50 / p99 / max ms ({n} sequential)",
            lat(serve_out["healthz"]),
            lat(plain["healthz"]),
            ratios(serve_out["healthz"], plain["healthz"]),
        ),
        (
            "**queue drain**: first request → last job done, per burst (jobs per burst; throughput)",
            " / ".join(f"{d:.1f} s" for d in drains) + f" (median {statistics.median(drains):.1f} s; "
            f"{'/'.join(str(j) for j in sorted(set(jobs)))} jobs; "
            f"{statistics.median(jobs) / statistics.median(drains):.1f} jobs/s)",
            "— (nothing consumes its queue)",
            "",
        ),
        (
            "jobs finished, per the ledger / per the status API",
            ", ".join(f"{v} {k}" for k, v in finals.items())
            + " / "
            + ", ".join(f"{v} {k}" for k, v in checked.items()),
            "—",
            "",
        ),
        (
            "one job alone, request → done (median of the idle baseline)",
            f"{statistics.median(job_t):.3f} s" if job_t else "—",
            "—",
            "",
        ),
        (
            "CPU ms per report request while the bursts are answered (each process's CPU time ÷ number of 200 answers)",
            cpu_per_request(sb),
            cpu_per_request(pb),
            "",
        ),
        (
            f"machine CPU busy while the bursts are answered (all processes, {os.cpu_count()} cores)",
            busy(sb),
            busy(pb),
            "",
        ),
    ]
    before, hwm, peaks, after = serve_out["rss_before"], serve_out["rss_hwm"], serve_out["peaks"], serve_out["after"]
    for label in before:
        per_burst = " / ".join(mb(p.get(label)) for p in peaks)
        rows.append(
            (
                f"**RSS MB, {label}**: before the bursts → peak in each burst → after the last drain; VmHWM",
                f"{mb(before[label])} → {per_burst} → {mb(after[-1][label])}; {mb(hwm[label])}",
                "",
                "",
            )
        )
    prss = plain["rss"]
    rows.append(
        (
            "RSS MB, uvicorn process: peak in the bursts; VmHWM",
            "",
            f"{mb(prss['peak'].get('uvicorn process'))}; {mb(prss['hwm'].get('uvicorn process'))}",
            "",
        )
    )

    lines = [
        (
            f"## Backpressure: {args.institutions} institutions × {args.per_institution} report requests at once, "
            f"{args.repeat} bursts (2 CPUs, loopback; Ray workers started at niceness "
            f"{os.environ.get('RAY_worker_niceness', '15')})\n"
        ),
        (
            "| | Serve app (HTTP → ReportsAPI → limiter actor → queue → ledger; consumer working) "
            "| plain uvicorn FastAPI (same path, in-process limiter) | Serve / uvicorn |"
        ),
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--institutions", type=int, default=50)
    p.add_argument("--per-institution", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=50, help="requests in flight at most")
    p.add_argument("--baseline", type=int, default=50, help="sequential requests for the idle baseline")
    p.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for one burst's jobs")
    p.add_argument("--quick", action="store_true", help="smoke run: 10 institutions × 2, 1 burst, 10 idle")
    args = p.parse_args()
    if args.quick:
        args.institutions, args.per_institution, args.repeat, args.baseline = 10, 2, 1, 10
    started = time.perf_counter()

    wh = warehouse(args.institutions)
    toks = tokens(args.institutions)
    print("plain uvicorn reference:", flush=True)
    plain = run_uvicorn(args, toks)
    print("Serve app:", flush=True)
    served = run_serve(args, toks, wh)

    text = table(args, served, plain)
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "backpressure_bench_quick.md" if args.quick else "backpressure_bench.md"
    (OUT / name).write_text(text + "\n")
    print(f"\n(total bench time {time.perf_counter() - started:.0f}s; written to bench/out/{name})")


if __name__ == "__main__":
    main()
