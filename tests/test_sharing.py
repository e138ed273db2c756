"""Many jobs at once: the render pool's slots shared fairly between the jobs rendering on it,
and a consumer's job slots shared between institutions (a burst of one institution's requests
goes to the back of the queue, not in front of another institution's single request)."""

from __future__ import annotations

import threading
import time
from statistics import median

from actors.consumer import InstitutionShare, JobRunner
from actors.job import Status
from actors.ledger import Ledger
from actors.notify import open_notifier
from actors.partition import plan_chunks
from actors.queue import open_queue
from actors.render import RayRenderer, render_serially, table_chunks
from actors.storage import open_storage
from actors.warehouse import open_warehouse
from tests.test_consumer import accept
from tests.test_xlsx_properties import sample_table


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
    worker = threading.Thread(target=lambda: big_parts.extend(
        _render(renderer.render, big, 3_000, lambda done: finished.append(time.monotonic()))))
    worker.start()
    while len(finished) < 4:
        time.sleep(0.01)
    started = time.monotonic()
    small_parts = _render(renderer.render, small, 100)
    small_done = time.monotonic()
    worker.join()
    big_chunks_meanwhile = sum(started <= t <= small_done for t in finished)
    chunk_time = median(b - a for a, b in zip(finished, finished[1:]))
    assert len(finished) > 20 and finished[-1] > small_done, "the small job waited for the big one"
    # Its 3 chunks wait for at most the big job's 4 already submitted, then alternate with it.
    assert big_chunks_meanwhile <= 4 + 3, (big_chunks_meanwhile, chunk_time)
    assert small_parts == _render(render_serially, small, 100)
    assert big_parts == _render(render_serially, big, 3_000)


def test_an_institution_past_its_share_goes_to_the_back_of_the_queue(tmp_path, settings_factory):
    """With its share of the slots taken, an institution's next job is published again behind
    the others and its delivery acknowledged (a nack would count towards the dead-letter limit):
    another institution's job, queued later, runs first; the deferred one runs when a slot frees,
    once, with its ledger record untouched meanwhile."""
    settings = settings_factory(tmp_path)
    queue, storage = open_queue(settings.queue_url), open_storage(settings)
    share = InstitutionShare(1)
    runner = JobRunner(settings, queue, storage, open_warehouse(settings.warehouse_url), open_notifier(settings),
                       worker_id="slot-1", share=share)
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
