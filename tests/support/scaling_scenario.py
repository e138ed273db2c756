"""The consumer replicas following the backlog: the Serve app with the backlog policy takes a
burst of jobs; the most replicas seen, each job's outcome and the replicas once drained.

Called in the test session's Ray for ``local://`` (tests/job/test_sharing.py), and run in a process
of its own for ``pubsub://``, whose Ray workers must start with the emulator in their
environment (the session's Ray started before it):
    python tests/support/scaling_scenario.py DATA_DIR WAREHOUSE QUEUE_URL
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: `tests` importable

from ray import serve

from actors.config.settings import load_settings
from actors.job.ledger import Ledger
from actors.job.state import Status
from actors.job.submit import submit
from actors.queue import open_queue
from actors.storage import open_storage
from serve_app.app import build_app
from tests.conftest import base_settings
from tests.support.jobs import catalog_job as job

SCALING = {
    "min_replicas": 1,
    "max_replicas": 3,
    "metrics_interval_s": 0.5,
    "look_back_period_s": 1,
    "upscale_delay_s": 0.5,
    "downscale_delay_s": 3,
}


def run(data_dir: Path, warehouse: Path, queue_url: str = "", jobs: int = 16) -> dict:
    values = base_settings(
        data_dir, warehouse, consumer_jobs=1, chunk_rows=5_000, **({"queue_url": queue_url} if queue_url else {})
    )
    serve.run(build_app({**values, "consumer_autoscaling": SCALING}), name="scaling", route_prefix="/scaling")
    settings = load_settings(**values)
    queue, ledger = open_queue(settings.queue_url), Ledger(open_storage(settings.storage_url, settings.links))

    def replicas() -> int:
        return serve.status().applications["scaling"].deployments["JobConsumer"].replica_states.get("RUNNING", 0)

    try:
        before = replicas()
        accepted = [job(institution_id=1, user_id=100 + i) for i in range(jobs)]
        for one in accepted:
            submit(ledger, queue, one)
        most, deadline = before, time.monotonic() + 240
        while time.monotonic() < deadline:
            most = max(most, replicas())
            if all(ledger.get(one.job_id)[0].notified for one in accepted):
                break
            time.sleep(0.2)
        states = [ledger.get(one.job_id)[0] for one in accepted]
        while time.monotonic() < deadline and replicas() > 1:
            time.sleep(0.5)
        notes = settings.outbox_path.read_text().splitlines() if settings.outbox_path.exists() else []
        return {
            "before": before,
            "most": most,
            "after": replicas(),
            "notes": len(notes),
            "outcomes": [[s.status == Status.done, s.attempts, s.notified] for s in states],
        }
    finally:
        serve.delete("scaling")
        if hasattr(queue, "close"):
            queue.close()


if __name__ == "__main__":
    import ray

    from actors.runtime.priority import workers_at_normal_priority

    workers_at_normal_priority()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    from tests.support.emulators import free_port

    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    try:
        print("RESULT " + json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
