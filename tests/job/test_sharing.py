"""Many jobs at once: the render pool's slots shared fairly between the jobs rendering on it,
and a consumer's job slots shared between institutions (a burst of one institution's requests
goes to the back of the queue, not in front of another institution's single request)."""

from __future__ import annotations

import threading
import time
from statistics import median

import pytest

from actors.job.consumer import InstitutionShare, JobRunner
from actors.job.ledger import Ledger
from actors.job.state import Status
from actors.notify import open_notifier
from actors.queue import open_queue
from actors.report.partition import plan_chunks
from actors.report.render import RayRenderer, render_serially, table_chunks
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.report.xlsx.test_xlsx_properties import sample_table
from tests.support.jobs import accept


def _render(render, table, chunk_rows, on_done=lambda done: None):
    plan = plan_chunks(table["school"], chunk_rows)
    partitions, rows = table_chunks(table, plan)
    return [bytes(p.data) for p in render(partitions, plan, rows, table.column_names, on_done)]


def test_a_small_job_renders_beside_a_big_one_not_after_it(ray_session):
    """A big job alone has every slot; a small job starting meanwhile gets one as soon as one of
    the big job's chunks finishes, so it is done long before the big job, and neither job's
    bytes change for the sharing."""
    big, small = sample_table(90_000), sample_table(300)
    renderer = RayRenderer(4)
    _render(renderer.render, small, 100)  # warm-up: imports in the workers
    finished: list[float] = []
    big_parts: list = []
    worker = threading.Thread(
        target=lambda: big_parts.extend(
            _render(renderer.render, big, 3_000, lambda done: finished.append(time.monotonic()))
        )
    )
    worker.start()
    while len(finished) < 4:
        time.sleep(0.01)
    started = time.monotonic()
    small_parts = _render(renderer.render, small, 100)
    small_done = time.monotonic()
    worker.join()
    meanwhile = sum(started <= t <= small_done for t in finished)
    left = sum(t >= started for t in finished)  # the big job's chunks still to render when the small one came
    chunk_time = median(b - a for a, b in zip(finished, finished[1:]))
    assert len(finished) > 20 and finished[-1] > small_done, "the small job waited for the big one"
    # Queued behind the big job it would see all of them finish first; sharing, a few (the
    # chunks already submitted, and those finishing while it polls: chunks here take ~20 ms).
    assert meanwhile <= left / 2, (meanwhile, left, chunk_time)
    assert small_parts == _render(render_serially, small, 100)
    assert big_parts == _render(render_serially, big, 3_000)


def test_an_institution_past_its_share_goes_to_the_back_of_the_queue(tmp_path, settings_factory):
    """With its share of the slots taken, an institution's next job is published again behind
    the others and its delivery acknowledged (a nack would count towards the dead-letter limit):
    another institution's job, queued later, runs first; the deferred one runs when a slot frees,
    once, with its ledger record untouched meanwhile."""
    settings = settings_factory(tmp_path)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    share = InstitutionShare(1)
    runner = JobRunner(
        settings.runner,
        queue,
        storage,
        open_warehouse(settings.warehouse_url),
        open_notifier(settings.notify_url, settings.notify),
        worker_id="slot-1",
        share=share,
    )
    burst = [accept(queue, storage, institution_id=1) for _ in range(2)]
    other = accept(queue, storage, institution_id=2, user_id=8)
    assert share.take(1)  # another slot is running one of institution 1's jobs
    runner.run_once(0)
    assert runner.deferred and queue.pending() == 3
    state, _ = Ledger(storage).get(burst[0])
    assert (state.status, state.attempts, state.worker) == (Status.queued, 0, None)
    runner.run_once(0)  # the burst's second job: deferred too
    runner.run_once(0)
    assert not runner.deferred and Ledger(storage).get(other)[0].status is Status.done
    share.give_back(1)
    while queue.pending():
        runner.run_once(0)
    states = [Ledger(storage).get(job_id)[0] for job_id in burst]
    assert [(s.status, s.attempts, s.notified) for s in states] == [(Status.done, 1, True)] * 2
    notes = settings.outbox_path.read_text().splitlines()
    assert len(notes) == 3 and queue.dead_letters() == []


@pytest.fixture(scope="module")
def mid_warehouse(tmp_path_factory):
    """One institution with 40,000 courses: a job that takes a second or two to render."""
    from actors.warehouse.demo import generate

    return generate(
        tmp_path_factory.mktemp("mid") / "wh.duckdb",
        institutions=1,
        courses=40_000,
        schools=20,
        views=200_000,
        enrollments=50_000,
    )


def test_a_consumer_told_to_stop_finishes_its_running_job_first(ray_session, mid_warehouse, tmp_path):
    """What Serve's graceful shutdown of a replica (a scale-down) runs: no new job is taken, and
    the running one ends done and notified, once, instead of waiting a lease for a takeover."""
    from actors.config.settings import load_settings
    from actors.job.deployment import ConsumerLoop
    from actors.job.submit import submit
    from tests.conftest import base_settings
    from tests.support.jobs import catalog_job as job

    values = base_settings(tmp_path, mid_warehouse, consumer_jobs=1, chunk_rows=200)  # seconds of rendering
    settings = load_settings(**values)
    queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
    ledger = Ledger(storage)
    running, waiting = job(institution_id=1), job(institution_id=1, user_id=8)
    loop = ConsumerLoop(values)
    stopping = threading.Thread(target=loop.stop)
    try:
        submit(ledger, queue, running)
        deadline = time.monotonic() + 60
        while (state := ledger.get(running.job_id)[0]).progress < 0.25 and time.monotonic() < deadline:
            time.sleep(0.02)
        stopping.start()  # returns once the running job is over
        assert state.status is Status.running and state.progress < 0.8, state  # stopped mid-render
        while stopping.is_alive() and not loop._stop.is_set():
            time.sleep(0.01)
        submit(ledger, queue, waiting)  # arrives after the stop: left for another consumer
    finally:
        if stopping.ident is None:  # failed before the stop
            stopping.start()
        stopping.join()
    state = ledger.get(running.job_id)[0]
    assert (state.status, state.notified, state.attempts) == (Status.done, True, 1)
    assert ledger.get(waiting.job_id)[0].status is Status.queued and queue.pending() == 1


def _check_scaling(result: dict, jobs: int = 16) -> None:
    # Each job ran once: a replica stopped mid-job would leave it to a takeover, a second run.
    assert result["outcomes"] == [[True, 1, True]] * jobs and result["notes"] == jobs, result
    assert (result["before"], result["most"], result["after"]) == (1, 3, 1), result


def test_consumer_replicas_follow_the_backlog_and_drain_before_stopping(service, ray_session, mid_warehouse, tmp_path):
    """With the backlog policy, a burst of jobs brings the consumer replicas up to the maximum;
    once the queue is drained they go back to the minimum, and no job is abandoned on the way."""
    from tests.support.scaling_scenario import run

    _check_scaling(run(tmp_path / "data", mid_warehouse))


def test_consumer_replicas_follow_a_pubsub_backlog(pubsub_emulator_closing_streams, mid_warehouse, tmp_path):
    """The same on the Pub/Sub emulator (replicas that stop close their streams: the emulator
    repaired to notice), in a Ray of its own started with the emulator in its workers'
    environment; the policy reads the ledger, the same for every queue."""
    import uuid

    from actors.queue.pubsub_admin import ensure_topology
    from tests.support.scenario import run_script

    name = uuid.uuid4().hex[:12]
    url = f"pubsub://catalog-test/jobs-{name}?subscription=worker-{name}&max_delivery_attempts=5"
    ensure_topology(url, ack_deadline_seconds=10, retry_policy=False)
    _check_scaling(run_script("scaling_scenario.py", tmp_path / "data", mid_warehouse, url, timeout=400))


def test_the_backlog_policy_gives_every_pending_job_a_slot():
    """The policy alone, on what replicas report: replicas for every pending job's slot, one
    more while a job has waited past the age target; Serve applies the bounds and delays."""
    from types import SimpleNamespace

    from actors.job.autoscaling import BacklogPolicy

    def decide(current: int, reports: list[dict], age_target_s: float = 30) -> int:
        metrics = {key: {f"replica-{i}": r[key] for i, r in enumerate(reports)} for key in reports[0]}
        ctx = SimpleNamespace(current_num_replicas=current, aggregated_metrics=metrics, policy_state={})
        return BacklogPolicy(age_target_s)(ctx)[0]

    def report(pending, oldest=0.0, running=0, slots=4):
        return {"pending": pending, "oldest_queued_s": oldest, "running": running, "slots": slots}

    assert decide(1, [report(0)]) == 0  # Serve keeps min_replicas
    assert decide(1, [report(9)]) == 3
    assert decide(3, [report(9), report(7)]) == 3  # replicas read the ledger at different moments
    assert decide(3, [report(2)]) == 1  # Serve waits downscale_delay_s before acting on it
    assert decide(2, [report(8, oldest=45)]) == 3  # full, and a job has waited too long
    assert decide(2, [report(3, oldest=5)]) == 1
    ctx = SimpleNamespace(current_num_replicas=2, aggregated_metrics={}, policy_state={})
    assert BacklogPolicy()(ctx)[0] == 2  # nobody reported yet: no change
