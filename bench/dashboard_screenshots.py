"""Screenshots of the Ray dashboard's Serve page and of the service's Ray job page while 1M-row
reports are rendered, for the README: what a user sees of the service in the dashboard.

    .venv/bin/python bench/synthetic.py --courses 1000000        # once: the warehouse (prints its path)
    .venv/bin/python bench/dashboard_screenshots.py --warehouse bench/out/cache/<that file>.duckdb

Starts ``catalog-report serve`` (its own Ray with the dashboard, stopped again at the end),
logs headless Chromium in with the token the way ``serve`` says, asks for ``--jobs`` reports of
institution 1 at once, captures the Serve page, then the page of the Ray job ``serve`` runs (its
"Ray Core Overview": the render-chunk tasks running and finished) every ``--every`` seconds until
the reports are done, and keeps the capture in which the most tasks were running. Needs Debian's
``chromium`` and ``npm ci`` in tests/support/browser.
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

from tests.support.dashboard_browser import DashboardBrowser, missing  # noqa: E402
from tests.support.emulators import free_port  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402

# The job page's task summary, e.g. "Total: 41 Finished: 37 Running: 4".
RUNNING = re.compile(r"Running: (\d+)")
JOB_VIEW = {"width": 1400, "height": 560}
# The Serve page down to its deployments table (its log viewer below needs the dashboard agent's
# port 52365, which on a machine with several Rays may belong to another one).
SERVE_VIEW = {"width": 1400, "height": 660}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", type=Path, required=True, help="DuckDB file with the report's schema")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard")
    p.add_argument("--jobs", type=int, default=6, help="reports asked at once")
    p.add_argument("--every", type=float, default=0.5, help="seconds between job-page captures")
    a = p.parse_args()
    if why := missing():
        sys.exit(why)
    a.out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="crshot-"))  # the service's data dir: queue, files, ledger
    secret = secrets.token_urlsafe(32)
    env = {
        "REPORTS_DATA_DIR": str(data),
        "REPORTS_WAREHOUSE_URL": f"duckdb://{a.warehouse.resolve()}",
        "REPORTS_JWT_SECRET": secret,
        "REPORTS_RENDER_WORKERS": "2",
    }
    try:
        server = ServeProcess(["--port", str(free_port()), "--dashboard-port", str(free_port())], env)
        print("\n".join(server.lines))
        try:
            # What serve printed is what a user does: run that `ray get-auth-token`, paste its output.
            ray_cli = server.printed(r"paste what `(\S+) get-auth-token` prints")
            token = subprocess.run(
                [ray_cli, "get-auth-token"], capture_output=True, text=True, env=server.env, check=True
            ).stdout
            browser = DashboardBrowser(server.dashboard_url, token)
            try:
                shoot(server, browser, token, secret, a)
            finally:
                browser.close()
        finally:
            server.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


def shoot(server: ServeProcess, browser: DashboardBrowser, token: str, secret: str, a) -> None:
    user = jwt.encode(
        {"institutionId": 1, "userId": 7, "subdomain": "rede-aprender", "exp": int(time.time()) + 3600},
        secret,
        algorithm="HS256",
    )
    auth = {"Authorization": f"Bearer {user}"}

    def ask(path: str, **params) -> dict:
        return httpx.get(f"{server.api_url}{path}", params=params, headers=auth, timeout=30).json()["results"]

    started = time.monotonic()
    jobs = [
        ask("/institution/reports/catalog", start_date="2025-01-01", end_date="2026-12-31")["id"] for _ in range(a.jobs)
    ]  # queued at once
    serve = browser.page("serve", until=["catalog-report", "RUNNING"], **SERVE_VIEW)
    print(f"serve page: {serve['rows'][1:4]}, {browser.screenshot(a.out / 'serve.png')} bytes")
    login = httpx.post(f"{server.dashboard_url}/api/authenticate", headers={"Authorization": f"Bearer {token}"})
    [driver] = [
        j
        for j in httpx.get(f"{server.dashboard_url}/api/jobs/", cookies=login.cookies).json()
        if "catalog-report" in (j.get("entrypoint") or "") and j["status"] == "RUNNING"
    ]
    best, now, most = a.out / ".job-best.png", a.out / ".job-now.png", -1
    while True:  # the dashboard's figures lag by a few seconds: capture throughout, keep the busiest
        states = [ask(f"/institution/reports/jobs/{job}") for job in jobs]
        if all(s["status"] in ("done", "failed") for s in states):
            break
        text = browser.page(f"jobs/{driver['job_id']}", until=["Running:"], seconds=5, whole=True, **JOB_VIEW)["rows"]
        browser.screenshot(now)
        running = max((int(m.group(1)) for t in text if (m := RUNNING.search(t))), default=0)
        print(f"  {[(s['status'], s['progress']) for s in states]}: {running} tasks running")
        if running > most:
            most = running
            now.replace(best)
        time.sleep(a.every)
    print(f"{[(s['status'], s['rows']) for s in states]} in {time.monotonic() - started:.1f} s")
    if most < 0:
        raise SystemExit("every job was done before the job page could be captured: use a bigger --warehouse")
    best.replace(a.out / "job.png")
    now.unlink(missing_ok=True)
    print(f"job page, {most} tasks running: {a.out / 'job.png'}, {(a.out / 'job.png').stat().st_size} bytes")


if __name__ == "__main__":
    main()
