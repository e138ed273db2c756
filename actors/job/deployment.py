"""The consumer as a Ray Serve deployment: one Serve application (or config file) deploys the
HTTP API and its consumer together, Serve restarts a consumer that dies, and the backlog policy
(:mod:`actors.job.autoscaling`) sizes the replicas."""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import pyarrow as pa
from ray import serve

from actors.config.settings import load_settings
from actors.job.autoscaling import Backlog
from actors.job.consumer import MAX_BACKOFF, InstitutionShare, JobRunner, backoff, worker_name
from actors.job.readiness import BackendChecks
from actors.job.reconciler import Reconciler
from actors.notify import open_notifier
from actors.observability.logs import use_serve_log_files
from actors.queue import open_queue
from actors.report.fetch import fetch_on_ray
from actors.report.render import RayRenderer
from actors.runtime.priority import as_background
from actors.storage import open_storage
from actors.warehouse.on_demand import OnDemandWarehouse

log = logging.getLogger(__name__)

DRAIN_SECONDS = 600  # a replica being stopped finishes its running jobs for at most this long


class ConsumerLoop:
    """Builds the backends from settings and runs one :class:`JobRunner` per job slot, each in a
    thread, so the replica's event loop stays free for health checks, stats and autoscaling."""

    def __init__(self, settings_values: dict, render_workers: int | None = None):
        as_background()
        # Ray gives workers OMP_NUM_THREADS=1, which Arrow takes as its thread-pool size; this
        # process sorts and cuts the report while no chunk of it renders yet: let it use the node.
        pa.set_cpu_count(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
        self.settings = settings = load_settings(**settings_values)
        renderer = RayRenderer(render_workers or settings.render_workers)
        # Nothing here needs a backend to answer: a consumer that is down cannot say what is
        # wrong, and its jobs would wait unseen. A backend that is down fails the jobs that need
        # it (retried, then failed and notified) and shows in backends().
        queue, storage = open_queue(settings.queue_url), open_storage(settings.storage_url, settings.links)
        warehouse = OnDemandWarehouse(settings.warehouse_url)
        notifier = open_notifier(settings.notify_url, settings.notify)
        share = InstitutionShare(settings.institution_jobs)
        base = worker_name()
        # One runner per job slot, each its own claimant: two slots must never both hold a job.
        self.runners = [
            JobRunner(
                settings.runner,
                queue,
                storage,
                warehouse,
                notifier,
                render=renderer.render,
                worker_id=f"{base}/{slot}",
                fetch=fetch_on_ray,
                share=share,
            )
            for slot in range(settings.consumer_jobs)
        ]
        self.reconciler = Reconciler(settings.reconcile, queue, storage, holder=base)
        self.checks = BackendChecks(queue, storage, settings.warehouse_url, settings.readiness_reuse_seconds)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(runner,), daemon=True, name=f"consumer-slot-{i}")
            for i, runner in enumerate(self.runners)
        ]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._reconcile, daemon=True, name="reconciler").start()

    def _loop(self, runner: JobRunner) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                runner.run_once(wait_seconds=1.0, stopping=self._stop.is_set)
                if runner.deferred:  # only its institution's further jobs may be waiting: not a busy loop
                    self._stop.wait(0.25)
                failures = 0
            except Exception:
                # e.g. the queue or the ledger is down: said once per attempt, ever less often
                failures += 1
                pause = backoff(failures - 1, cap=MAX_BACKOFF / 2)
                log.exception("consumer loop error (%d in a row); next try in %.0f s", failures, pause)
                self._stop.wait(pause)

    def load(self) -> dict[str, float]:
        """What the autoscaling policy weighs (actors/job/autoscaling.py)."""
        backlog = Backlog.read(self.runners[0].ledger)
        return {
            "pending": backlog.pending,
            "oldest_queued_s": backlog.oldest_queued_s,
            "running": sum(runner.busy for runner in self.runners),
            "slots": len(self.runners),
        }

    def backends(self) -> dict[str, str | None]:
        """Each backend's name → None when usable, else why not (``/readyz``)."""
        return self.checks.report() | {"consumer": None if self.alive() else "its loop stopped"}

    def _reconcile(self) -> None:
        """Every replica ticks; the reconciler's lease lets one of them make the pass."""
        while not self._stop.wait(self.settings.reconcile_seconds):
            try:
                self.reconciler.tick()
            except Exception:
                log.exception("reconciler pass failed; the next one is in %s s", self.settings.reconcile_seconds)

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Take no new job; wait for the running ones to finish (a drain: Serve gives a replica
        that is scaled down ``graceful_shutdown_timeout_s``; past it, the lease protocol hands
        its jobs to another consumer)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()


@serve.deployment(
    name="JobConsumer",
    num_replicas=1,
    ray_actor_options={"num_cpus": 0},
    health_check_period_s=5,
    logging_config={"encoding": "JSON"},
    graceful_shutdown_timeout_s=DRAIN_SECONDS,
)
class JobConsumer:
    """A Serve replica around one :class:`ConsumerLoop`."""

    def __init__(self, settings_values: dict):
        use_serve_log_files()
        self.loop = ConsumerLoop(settings_values)

    def check_health(self) -> None:
        if not self.loop.alive():
            raise RuntimeError("consumer loop stopped")

    async def record_autoscaling_stats(self) -> dict[str, float]:
        """For the backlog policy, when the deployment autoscales (serve_app.app.build_app)."""
        return await asyncio.to_thread(self.loop.load)

    async def backends(self) -> dict[str, str | None]:
        return await asyncio.to_thread(self.loop.backends)

    async def __del__(self):
        """Serve's graceful shutdown (a scale-down too): the running jobs finish first."""
        if loop := getattr(self, "loop", None):  # absent when __init__ failed
            await asyncio.to_thread(loop.stop)
