"""The Ray dashboard and Prometheus as a user of ``catalog-report serve`` meets them.

One ``serve`` subprocess for the module, started as the README's first command starts it (its
own Ray, dashboard on by default), in a HOME of its own so the token Ray generates, and the path
``serve`` prints for it, are this test's."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from serve_app.dashboard import how_to_open
from tests.conftest import SECRET, free_port
from tests.support.dashboard_browser import DashboardBrowser, missing
from tests.support.serve_process import ServeProcess

GOOD = {"start_date": "2025-01-01", "end_date": "2025-12-31"}


def one_report(served) -> str:
    """Request a report through the API and wait until it is done; its job id."""
    import jwt

    token = jwt.encode(
        {"institutionId": 1, "userId": 7, "subdomain": "demo", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256"
    )
    auth = {"Authorization": f"Bearer {token}"}
    job = httpx.get(f"{served.api_url}/institution/reports/catalog", params=GOOD, headers=auth, timeout=30)
    job_id = job.json()["results"]["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = httpx.get(f"{served.api_url}/institution/reports/jobs/{job_id}", headers=auth, timeout=30)
        if status.json()["results"]["status"] == "done":
            return job_id
        time.sleep(0.5)
    raise AssertionError(status.text)


@pytest.fixture(scope="module")
def served(warehouse, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    data = tmp_path_factory.mktemp("dashboard-service")
    port, dashboard_port = free_port(), free_port()
    env = {
        "HOME": str(home),
        "REPORTS_DATA_DIR": str(data),
        "REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}",
        "REPORTS_JWT_SECRET": SECRET,
        "REPORTS_RENDER_WORKERS": "2",
    }
    server = ServeProcess(["--port", str(port), "--dashboard-port", str(dashboard_port)], env)
    server.home, server.port, server.dashboard_port = home, port, dashboard_port
    yield server
    server.stop()


def test_serve_prints_the_dashboard_and_how_to_pass_its_token(served):
    lines = served.lines
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(start))
        for start in ("catalog-report is serving at", "  curl ", "notifications:", "Ray dashboard:", "Ctrl-C")
    ]
    assert order == sorted(order), lines
    assert served.api_url == f"http://127.0.0.1:{served.port}"
    assert served.dashboard_url == f"http://127.0.0.1:{served.dashboard_port}"

    # The printed token file is the one Ray made, and the printed command prints that token.
    token_file = Path(served.printed(r"the token is in (\S+?)\)"))
    assert token_file == served.home / ".ray" / "auth_token"
    token = token_file.read_text().strip()
    command = served.printed(r"paste what `(\S+) get-auth-token` prints")
    shown = subprocess.run([command, "get-auth-token"], capture_output=True, text=True, env=served.env, timeout=60)
    assert shown.stdout == token, shown.stderr
    assert any("RAY_AUTH_MODE=disabled" in line for line in lines)

    # What the browser meets: 401 without the token; the token as a header or as the cookie.
    api = f"{served.dashboard_url}/api/serve/applications/"
    assert httpx.get(api, timeout=30).status_code == 401
    apps = httpx.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["applications"]
    assert apps["catalog-report"]["status"] == "RUNNING"
    login = httpx.post(
        f"{served.dashboard_url}/api/authenticate", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert login.status_code == 200 and "ray-authentication-token" in login.cookies
    assert httpx.get(api, cookies=login.cookies, timeout=30).status_code == 200


def test_the_lines_for_a_cluster_without_token_auth_or_joined():
    off = "\n".join(how_to_open("http://127.0.0.1:8265", "disabled", started_here=True))
    assert "WARNING: token authentication is off" in off and "can run code" in off
    joined = "\n".join(how_to_open("http://10.0.0.5:8265", "token", started_here=False))
    assert "get-auth-token" in joined and "RAY_AUTH_MODE=disabled" not in joined  # not this command's Ray


@pytest.mark.skipif(missing() is not None, reason=f"headless Chromium: {missing()}")
def test_the_dashboard_in_a_browser_shows_the_service(served):
    token = (served.home / ".ray" / "auth_token").read_text().strip()
    browser = DashboardBrowser(served.dashboard_url, token)
    try:
        assert browser.ready["tokenDialog"], "the dashboard did not ask for a token"
        serve = browser.page("serve", until=["catalog-report", "RUNNING"])
        assert serve["found"], serve["rows"]
        for deployment in ("ReportsAPI", "JobConsumer"):
            assert any(r.startswith(deployment) and "HEALTHY" in r for r in serve["rows"]), serve["rows"]
        actors = browser.page("actors", until=["JobConsumer", "ALIVE"])
        assert actors["found"], actors["rows"]
        jobs = browser.page("jobs", until=["catalog-report serve", "RUNNING"])  # serve's driver is a Ray job
        assert jobs["found"], jobs["rows"]
        # A report's chunks are render-chunk tasks of that job; each has its page under it.
        one_report(served)
        login = httpx.post(
            f"{served.dashboard_url}/api/authenticate", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        tasks = httpx.get(
            f"{served.dashboard_url}/api/v0/tasks",
            cookies=login.cookies,
            timeout=30,
            params={"filter_keys": "name", "filter_predicates": "=", "filter_values": "render-chunk", "limit": 10},
        ).json()
        [task, *_] = tasks["data"]["result"]["result"]
        shown = browser.page(
            f"jobs/{task['job_id']}/tasks/{task['task_id']}",
            whole=True,
            until=["render-chunk", "render_here", "FINISHED", '"CPU": 1'],
        )
        assert shown["found"], shown["rows"]
    finally:
        browser.close()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus (Debian package prometheus)")
def test_prometheus_scrapes_the_service_metrics(served, tmp_path):
    """Debian's Prometheus, on the configuration Ray writes into its session directory."""
    config = served.session_dir / "metrics" / "prometheus" / "prometheus.yml"
    assert config.exists(), sorted(p.name for p in served.session_dir.iterdir())
    port = free_port()
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "w"),
    )
    try:
        one_report(served)
        query = f"http://127.0.0.1:{port}/api/v1/query"
        deadline, result = time.monotonic() + 120, []
        while time.monotonic() < deadline and not result:
            try:  # the counter reaches Prometheus after Ray's report interval and a scrape (10 s each)
                result = httpx.get(query, params={"query": 'ray_catalog_jobs_total{status="done"}'}, timeout=10).json()[
                    "data"
                ]["result"]
            except httpx.HTTPError:
                pass  # still starting
            time.sleep(2)
        assert result and float(result[0]["value"][1]) >= 1, (tmp_path / "prometheus.log").read_text()[-2000:]
    finally:
        prometheus.terminate()
        prometheus.wait(30)
