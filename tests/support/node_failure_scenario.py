"""A three-node Ray cluster on this machine (``ray.cluster_utils.Cluster``) running one large
report job while a node or the consumer dies; prints the outcome and a timeline as JSON.

Run by tests/cluster/test_node_failure.py in a subprocess (a process can join only one Ray cluster):
    python tests/support/node_failure_scenario.py kill-render-node|kill-consumer DATA_DIR
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: `tests` importable

import ray
from ray.cluster_utils import Cluster

from actors.config.settings import load_settings
from actors.job.deployment import ConsumerLoop
from actors.job.ledger import Ledger
from actors.job.submit import submit
from actors.queue import open_queue
from actors.storage import open_storage
from tests.support.jobs import catalog_job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rendering_on(node_id: str) -> int:
    """Render tasks running on ``node_id`` now, as Ray's state API sees them."""
    from ray.util.state import list_tasks

    running = list_tasks(filters=[("name", "=", "render-chunk"), ("state", "=", "RUNNING")], limit=1000)
    return sum(task.node_id == node_id for task in running)


def _render_tasks_by_node(names: dict[str, str]) -> dict[str, int]:
    """Render task attempts per node (failed ones included), by the nodes' names."""
    from ray.util.state import list_tasks

    attempts = list_tasks(filters=[("name", "=", "render-chunk")], limit=10_000, detail=True)
    counts: dict[str, int] = {}
    for task in attempts:
        name = names.get(task.node_id, "other")
        counts[name] = counts.get(name, 0) + 1
    return counts


def main(mode: str, data_dir: Path) -> dict:
    t0 = time.monotonic()
    timeline: list[tuple[float, str]] = []

    def mark(event: str) -> None:
        timeline.append((round(time.monotonic() - t0, 2), event))

    # The dashboard's API server answers the state API (where render tasks ran), on a free port.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "gcs_server_port": free_port(),
            "include_dashboard": True,
            "dashboard_port": free_port(),
        },
    )
    nodes = [
        cluster.add_node(num_cpus=2, object_store_memory=300 * 2**20),
        cluster.add_node(num_cpus=4, object_store_memory=300 * 2**20),
    ]
    context = ray.init(address=cluster.address, log_to_driver=False)
    os.environ["RAY_ADDRESS"] = f"http://{context.dashboard_url}"  # for the state API
    mark("cluster up: head (0 CPU) + worker nodes with 2 and 4 CPUs")

    values = {
        "data_dir": str(data_dir),
        "warehouse_url": f"duckdb://{data_dir / 'warehouse.duckdb'}",
        "jwt_secret": "x" * 32,
        "lease_seconds": 3,
        "chunk_rows": 1000,
        "render_workers": 4,
    }
    settings = load_settings(**values)
    consumer = (
        ray.remote(ConsumerLoop)
        .options(name="catalog-consumer", num_cpus=0, max_restarts=-1, max_task_retries=-1)
        .remote(values)
    )
    assert ray.get(consumer.alive.remote())
    mark("consumer actor started (4 chunks rendering at once, as Ray tasks)")

    job = catalog_job(end_date=date(2026, 12, 31))
    ledger = Ledger(open_storage(settings.storage_url, settings.links))
    submit(ledger, open_queue(settings.queue_url), job)
    job_id = job.job_id
    mark(f"job {job_id[-8:]} accepted")

    def progress() -> float:
        found = ledger.get(job_id)
        return found[0].progress if found else 0.0

    while progress() < 0.25:  # the query is done and rendering has begun
        time.sleep(0.02)
    at_kill = progress()
    mark(f"rendering, progress {at_kill:.2f}")
    if at_kill >= 0.9:
        raise SystemExit(f"inconclusive: the job was nearly done ({at_kill:.2f}) before the kill")
    if mode == "kill-render-node":
        while not (on_doomed := _rendering_on(nodes[0].node_id)) and progress() < 0.9:
            time.sleep(0.05)
        if not on_doomed:
            raise SystemExit("no render task ran on the node to kill before the job was nearly done")
        cluster.remove_node(nodes[0], allow_graceful=False)
        mark(f"worker node with 2 CPUs killed while rendering {on_doomed} chunks")
    else:
        ray.kill(consumer, no_restart=False)
        mark("consumer actor killed (Ray restarts it)")

    outbox = settings.outbox_path
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not outbox.exists():
        time.sleep(0.2)
    mark("notification written")
    time.sleep(settings.lease_seconds * 3)  # a duplicate would show up by now
    notes = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
    state = ledger.get(job_id)[0]
    files = list((data_dir / "files" / "catalog").rglob("*.xlsx"))
    by_node = _render_tasks_by_node({n.node_id: name for n, name in zip(nodes, ["killed", "survivor"])})
    ray.shutdown()
    cluster.shutdown()
    return {
        "render_tasks_by_node": by_node,
        "job_id": job_id,
        "status": state.status.value,
        "rows": state.rows,
        "notes": notes,
        "files": [str(f) for f in files],
        "runs": state.attempts,
        "timeline": timeline,
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], Path(sys.argv[2]))), flush=True)
