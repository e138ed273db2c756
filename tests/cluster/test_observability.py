"""Metrics where Prometheus and the Ray dashboard find them, and JSON log lines with the job id."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

GOOD = {"start_date": "2025-01-01", "end_date": "2025-12-31"}
ROOT = Path(__file__).resolve().parents[2]


def scrape(url: str, wanted: list[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(url, timeout=10).text
        missing = [w for w in wanted if not re.search(w, text)]
        if not missing or time.monotonic() > deadline:
            assert not missing, f"not exported: {missing}"
            return text
        time.sleep(0.5)


def test_metrics_after_a_job(service, ray_session):
    token = service.token(institution_id=1)  # 16 rows: something to count
    job_id = service.request_report(token, **GOOD).json()["results"]["id"]
    assert service.wait_done(job_id, token)["status"] == "done"
    # One refusal: past 60 requests for one institution. One at a time, so none is turned away by
    # backpressure (503) before the rate limit sees it, as 8 at once can be on a busy machine.
    token = service.token(institution_id=9)
    answers = [service.request_report(token, **GOOD, school_ids=str(i + 1)).status_code for i in range(61)]
    assert answers.count(429) >= 1, answers
    text = scrape(
        ray_session.metrics_url,
        [
            r'ray_catalog_jobs_total\{[^}]*status="done"[^}]*\} [1-9]',
            r"ray_catalog_job_seconds_bucket",
            *[
                rf'ray_catalog_job_phase_seconds_bucket\{{[^}}]*phase="{p}"'
                for p in ("query", "prepare", "layout", "render", "merge", "store", "notify")
            ],
            r"ray_catalog_rows_rendered_total\{[^}]*\} [1-9]",
            r"ray_catalog_queue_lag_seconds_bucket",
            r"ray_catalog_rate_limit_refusals_total\{[^}]*\} [1-9]",
            r"ray_catalog_reconcile_passes_total\{[^}]*\} [1-9]",
            r"ray_catalog_jobs_pending\{",
        ],
    )
    # Serve's own metrics, alongside: the API deployment's request count.
    assert re.search(r'ray_serve_deployment_request_counter(_total)?\{[^}]*deployment="ReportsAPI"', text)
    _the_dashboard_queries_only_what_is_exported(text)


def _declared_metrics() -> set[str]:
    """The Prometheus names of the metrics actors/observability/metrics.py declares (some appear only once
    something happened: a redrive, a refusal)."""
    source = (ROOT / "actors" / "observability" / "metrics.py").read_text()
    suffixes = {"Counter": ["_total"], "Gauge": [""], "Histogram": ["_bucket", "_sum", "_count"]}
    return {
        f"ray_{name}{suffix}"
        for kind, name in re.findall(r'(Counter|Gauge|Histogram)\(\s*"([a-z_]+)"', source)
        for suffix in suffixes[kind]
    }


def _the_dashboard_queries_only_what_is_exported(scraped: str) -> None:
    """cluster/grafana/catalog-report.json: every metric a panel queries is declared by the
    service or exported by its Serve deployments, and what is exported carries the SessionName
    label the dashboard filters on."""
    dashboard = json.loads((ROOT / "cluster" / "grafana" / "catalog-report.json").read_text())
    queried = {
        m
        for panel in dashboard["panels"]
        for t in panel["targets"]
        for m in re.findall(r"\b(ray_[a-z_]+)\{", t["expr"])
    }
    assert {
        "ray_catalog_jobs_total",
        "ray_catalog_job_phase_seconds_bucket",
        "ray_catalog_jobs_pending",
        "ray_catalog_rows_rendered_total",
        "ray_catalog_rate_limit_refusals_total",
        "ray_serve_deployment_replica_healthy",
    } <= queried
    exported = {m for m in queried if re.search(rf'^{m}\{{[^}}]*SessionName="', scraped, re.MULTILINE)}
    assert queried <= exported | _declared_metrics(), sorted(queried - exported - _declared_metrics())
    assert "ray_serve_deployment_replica_healthy" in exported


def test_logs_are_json_lines_with_the_job_id(service, ray_session):
    token = service.token()
    job_id = service.request_report(token, **GOOD).json()["results"]["id"]
    service.wait_done(job_id, token)
    logs = Path(ray_session._private.worker.global_worker.node.get_logs_dir_path()) / "serve"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        records = []
        for path in logs.glob("replica_catalog-report_JobConsumer_*.log"):
            for line in path.read_text().splitlines():
                if job_id in line:
                    records.append(json.loads(line))  # every line is one JSON object
        if any(r.get("job_id") == job_id and "notified" in r.get("message", "") for r in records):
            break
        time.sleep(0.5)
    assert records and all(r["job_id"] == job_id for r in records if "job_id" in r)
    assert any("notified" in r["message"] for r in records)


def test_bulk_work_yields_the_cpu_to_the_http_path(service, ray_session):
    """API replicas run at normal priority; the consumer and render workers below them, so a
    burst of jobs cannot starve the requests (see actors/runtime/priority.py)."""
    import os

    import pyarrow as pa

    from actors.report.partition import plan_chunks
    from actors.report.render import render_here, table_chunks
    from actors.runtime.priority import BACKGROUND
    from tests.report.xlsx.test_xlsx_properties import sample_table

    def niceness(actor):
        return ray_session.get(actor.__ray_call__.remote(lambda self: os.nice(0)))

    found = {}
    for info in ray_session.util.list_named_actors(all_namespaces=True):
        kind = "api" if "ReportsAPI" in info["name"] else "consumer" if "JobConsumer" in info["name"] else None
        if kind:
            found.setdefault(kind, set()).add(
                niceness(ray_session.get_actor(info["name"], namespace=info["namespace"]))
            )

    # What a render task runs, in a task worker of its own: it lowers that process.
    table = sample_table(10)
    [chunk] = plan_chunks(table["school"], 10)
    [partition], [rows] = table_chunks(table, [chunk])

    def render_then_niceness(buffer: pa.Buffer) -> int:
        render_here(rows, chunk.first_row, table.column_names, buffer)
        return os.nice(0)

    found["render"] = {ray_session.get(ray_session.remote(num_cpus=1)(render_then_niceness).remote(partition))}
    assert found == {"api": {0}, "consumer": {BACKGROUND}, "render": {BACKGROUND}}, found
