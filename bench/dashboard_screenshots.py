"""Screenshots of the Ray dashboard's Serve and Actors pages while a 1M-row report is rendered,
for the README: what a user sees of the service in the dashboard.

    .venv/bin/python bench/synthetic.py --courses 1000000        # once: the warehouse (prints its path)
    .venv/bin/python bench/dashboard_screenshots.py --warehouse bench/out/cache/<that file>.duckdb

Starts ``catalog-report serve`` (its own Ray with the dashboard, stopped again at the end),
logs headless Chromium in with the token the way ``serve`` says, asks for ``--jobs`` reports of
institution 1 at once (the consumer runs them one after the other), captures the Serve page,
then the Actors page every ``--every`` seconds until the jobs are done, and keeps the capture in
which the render workers' CPU (as the dashboard shows it) is highest. Needs Debian's
``chromium`` and ``npm ci`` in tests/browser.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dashboard_browser import DashboardBrowser, missing  # noqa: E402
from tests.emulators import free_port  # noqa: E402
from tests.serve_process import ServeProcess  # noqa: E402

# In an Actors-page row the CPU column is the number just before the memory column ("135.6MB/23.5GB").
CPU = re.compile(r" (\d+(?:\.\d+)?) [\d.]+[KMGT]?B/")
# The whole Actors table in one capture: its CPU and memory columns are far right.
ACTORS_VIEW = {"width": 2400, "height": 820, "zoom": 0.7}
# The Serve page down to its deployments table (its log viewer below needs the dashboard agent's
# port 52365, which on a machine with several Rays may belong to another one).
SERVE_VIEW = {"width": 1400, "height": 660}


def render_cpu(rows: list[str]) -> float:
    """The render workers' CPU per cent, summed, as the dashboard shows it."""
    return sum(float(m.group(1)) for r in rows if "RenderWorker" in r and (m := CPU.search(r)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", type=Path, required=True, help="DuckDB file with the report's schema")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard")
    p.add_argument("--jobs", type=int, default=3, help="reports asked at once")
    p.add_argument("--every", type=float, default=2.0, help="seconds between Actors-page captures")
    a = p.parse_args()
    if why := missing():
        sys.exit(why)
    a.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="crshot-"))
    secret = secrets.token_urlsafe(32)
    env = {"REPORTS_DATA_DIR": str(root / "data"), "REPORTS_WAREHOUSE_URL": f"duckdb://{a.warehouse.resolve()}",
           "REPORTS_JWT_SECRET": secret, "REPORTS_RENDER_WORKERS": "2"}
    (root / "data").mkdir()
    server = ServeProcess(root, ["--port", str(free_port()), "--dashboard-port", str(free_port())], env,
                          log=root / "serve.log")
    print("\n".join(server.lines))
    try:
        # What serve printed is what a user does: run that `ray get-auth-token`, paste its output.
        ray_cli = server.printed(r"paste what `(\S+) get-auth-token` prints")
        token = subprocess.run([ray_cli, "get-auth-token"], capture_output=True, text=True, env=server.env,
                               check=True).stdout
        browser = DashboardBrowser(server.dashboard_url, token)
        try:
            shoot(server, browser, secret, a)
        finally:
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def shoot(server: ServeProcess, browser: DashboardBrowser, secret: str, a) -> None:
    user = jwt.encode({"institutionId": 1, "userId": 7, "subdomain": "rede-aprender",
                       "exp": int(time.time()) + 3600}, secret, algorithm="HS256")
    auth = {"Authorization": f"Bearer {user}"}

    def ask(path: str, **params) -> dict:
        return httpx.get(f"{server.api_url}{path}", params=params, headers=auth, timeout=30).json()["results"]

    started = time.monotonic()
    jobs = [ask("/institution/reports/catalog", start_date="2025-01-01", end_date="2026-12-31")["id"]
            for _ in range(a.jobs)]  # queued at once: the render actors never wait for a request
    serve = browser.page("serve", until=["catalog-report", "RUNNING"], **SERVE_VIEW)
    print(f"serve page: {serve['rows'][1:4]}, {browser.screenshot(a.out / 'serve.png')} bytes")
    best, now, best_cpu = a.out / ".actors-best.png", a.out / ".actors-now.png", -1.0
    while True:  # the dashboard's CPU figures lag by a few seconds: capture throughout, keep the busiest
        states = [ask(f"/institution/reports/jobs/{job}") for job in jobs]
        if all(s["status"] in ("done", "failed") for s in states):
            break
        rows = browser.page("actors", until=["RenderWorker"], seconds=5, **ACTORS_VIEW)["rows"]
        browser.screenshot(now)
        cpu = render_cpu(rows)
        print(f"  {[(s['status'], s['progress']) for s in states]}: render workers' CPU {cpu:.0f}%")
        if cpu > best_cpu:
            best_cpu = cpu
            now.replace(best)
        time.sleep(a.every)
    print(f"{[(s['status'], s['rows']) for s in states]} in {time.monotonic() - started:.1f} s")
    best.replace(a.out / "actors.png")
    now.unlink(missing_ok=True)
    print(f"actors page, render workers' CPU {best_cpu:.0f}%: {a.out / 'actors.png'}, "
          f"{(a.out / 'actors.png').stat().st_size} bytes")


if __name__ == "__main__":
    main()
