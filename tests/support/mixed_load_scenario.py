"""Many institutions on a three-node Ray cluster on this machine (``ray.cluster_utils.Cluster``,
1 CPU per node): the Serve application as ``cluster/serve_config.yaml`` configures it, with the
consumer replicas and render settings given, takes 40 jobs of mixed sizes while (optionally) a
node is removed; prints the outcome as JSON.

Run by tests/cluster/test_mixed_load.py in a subprocess (a process can join only one Ray cluster):
    python tests/support/mixed_load_scenario.py DATA_DIR WAREHOUSE CONSUMERS RENDER_WORKERS CONSUMER_JOBS KILL
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import sys
import time
from datetime import date
from pathlib import Path

import ray
import yaml
from ray import serve
from ray.cluster_utils import Cluster

from actors.config.settings import load_settings
from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, new_job_id, utcnow
from actors.job.submit import submit
from actors.queue import open_queue
from actors.report.pipeline import produce_report
from actors.storage import open_storage
from actors.warehouse import CatalogQuery, open_warehouse
from serve_app.app import build_app

CONFIG = Path(__file__).resolve().parents[2] / "cluster" / "serve_config.yaml"
JOBS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mixed_jobs(warehouse: Path) -> list[CatalogJob]:
    """Whole institutions (big) and single schools (small), over 4 institutions, mixed in order."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    schools = con.execute("SELECT institution_id, id FROM schools ORDER BY id").fetchall()
    con.close()
    rng = random.Random(7)
    jobs = []
    for i in range(JOBS):
        institution, school = rng.choice(schools)
        big = i % 4 == 0
        jobs.append(
            CatalogJob(
                job_id=new_job_id(),
                institution_id=institution,
                user_id=1000 + i,
                subdomain="demo",
                start_date=date(2025, 1, 1),
                end_date=date(2026, 12, 31),
                school_ids=None if big else [school],
                timezone="UTC",
                requested_at=utcnow(),
            )
        )
    return jobs


def main(data_dir: Path, warehouse: Path, consumers: int, render_workers: int, consumer_jobs: int, kill: bool) -> dict:
    t0 = time.monotonic()
    timeline: list[tuple[float, str]] = []

    def mark(event: str) -> None:
        timeline.append((round(time.monotonic() - t0, 2), event))

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "gcs_server_port": free_port(),
            "include_dashboard": True,
            "dashboard_port": free_port(),
            "object_store_memory": 200 * 2**20,
        },
    )
    nodes = [cluster.add_node(num_cpus=1, object_store_memory=200 * 2**20) for _ in range(2)]
    context = ray.init(address=cluster.address, log_to_driver=False)
    os.environ["RAY_ADDRESS"] = f"http://{context.dashboard_url}"  # the state API: where tasks ran
    mark("cluster up: 3 nodes of 1 CPU")

    app = yaml.safe_load(CONFIG.read_text())["applications"][0]
    args = {
        **app["args"],
        "data_dir": str(data_dir),
        "warehouse_url": f"duckdb://{warehouse}",
        "jwt_secret": "x" * 32,
        "lease_seconds": 5,
        "chunk_rows": 2_000,
        "render_workers": render_workers,
        "consumer_jobs": consumer_jobs,
        "api_replicas": 1,
        "consumer_autoscaling": {"min_replicas": consumers, "max_replicas": consumers},
    }
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    serve.run(build_app(args), name="catalog-report", route_prefix="/")
    mark(
        f"serve_config.yaml's application: {consumers} consumers x {consumer_jobs} jobs, "
        f"render_workers={render_workers} on 3 CPUs"
    )

    settings = load_settings(**{k: v for k, v in args.items() if k not in ("api_replicas", "consumer_autoscaling")})
    ledger, queue = Ledger(open_storage(settings.storage_url, settings.links)), open_queue(settings.queue_url)
    jobs = mixed_jobs(warehouse)
    for job in jobs:
        submit(ledger, queue, job)
    mark(f"{JOBS} jobs accepted")

    def finished() -> int:
        return sum(bool((found := ledger.get(job.job_id)) and found[0].notified) for job in jobs)

    deadline = time.monotonic() + 360
    if kill:
        while finished() < JOBS // 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        cluster.remove_node(nodes[0], allow_graceful=False)
        mark(f"worker node removed after {finished()} jobs")
    while finished() < JOBS and time.monotonic() < deadline:
        time.sleep(0.2)
    mark(f"{finished()} jobs notified")
    time.sleep(settings.lease_seconds * 2)  # a duplicate would show up by now

    from ray.util.state import list_tasks

    node_names = {cluster.head_node.node_id: "head", nodes[0].node_id: "removed", nodes[1].node_id: "worker"}
    by_node: dict[str, int] = {}
    for task in list_tasks(filters=[("name", "=", "render-chunk")], limit=10_000, detail=True):
        by_node[node_names.get(task.node_id, "other")] = by_node.get(node_names.get(task.node_id, "other"), 0) + 1
    notes = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    states = [ledger.get(job.job_id)[0] for job in jobs]
    results = [
        {
            "job": job.job_id,
            "status": s.status.value,
            "rows": s.rows,
            "runs": s.attempts,
            "sha": hashlib.sha256(Path(settings.data_dir, "files", job.object_key).read_bytes()).hexdigest()
            if s.status.value == "done"
            else None,
        }
        for job, s in zip(jobs, states, strict=True)
    ]
    serve.shutdown()
    ray.shutdown()
    cluster.shutdown()
    mark("cluster down")

    # The same reports made in this process, one after another, with no cluster at all.
    wh = open_warehouse(f"duckdb://{warehouse}")
    expected = []
    for job in jobs:
        out = data_dir / "expected.xlsx"
        query = CatalogQuery.for_dates(job.institution_id, job.start_date, job.end_date, settings.zone, job.school_ids)
        produced = produce_report(wh, query, subdomain=job.subdomain, options=settings.report, out=out)
        expected.append({"rows": produced.rows, "sha": hashlib.sha256(out.read_bytes()).hexdigest()})
    wh.close()
    return {
        "results": results,
        "expected": expected,
        "render_tasks_by_node": by_node,
        "timeline": timeline,
        "notes": [(n["jobId"], n["status"]) for n in notes],
    }


if __name__ == "__main__":
    data_dir, warehouse, consumers, workers, slots, kill = sys.argv[1:7]
    print(
        "RESULT "
        + json.dumps(main(Path(data_dir), Path(warehouse), int(consumers), int(workers), int(slots), kill == "kill")),
        flush=True,
    )
