"""The consumer: one delivery from message to ack, with explicit state transitions.

    queued ──claim──▶ running ──file stored──▶ done ──notified──▶ ack
                        │ transient error: nack, retried with backoff
                        └─ out of attempts ──▶ failed ──notified──▶ ack

The ledger record is the idempotency key: a redelivered message whose job is already notified
is acked without work, a job claimed by a live consumer is left to it, a claim whose heartbeat
stopped (its consumer died) is taken over. Unparseable messages are dead-lettered at once.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa

from actors.observability import metrics
from actors.job.autoscaling import Backlog
from actors.job.message import CatalogJob, JobState, Status, read_message, utcnow
from actors.observability.logs import job_log, use_serve_log_files
from actors.job.ledger import Ledger
from actors.notify import Notification, NotificationRejected, Notifier
from actors.report.fetch import Fetcher, fetch_here
from actors.report.pipeline import Produced, produce_report
from actors.queue import Delivery, JobQueue
from actors.report.render import Renderer, render_serially
from actors.storage import PreconditionFailed, Storage
from actors.storage.base import XLSX_TYPE
from actors.warehouse import CatalogQuery, Warehouse

log = logging.getLogger("catalog_report.consumer")

HEARTBEAT_SECONDS = 1.0  # progress is written at most this often
MAX_BACKOFF = 60.0
DRAIN_SECONDS = 600  # a replica being stopped finishes its running jobs for at most this long
STALE_MARGIN = 0.5  # seconds past a claim's staleness before it is retried (clocks and rounding)

PHASE_ERRORS = {
    "link": "its download link could not be created",
    "query": "the data warehouse could not be queried",
    "render": "the spreadsheet could not be rendered",
    "merge": "the spreadsheet could not be assembled",
    "store": "the file could not be stored",
}


class _Claim:
    """This consumer's hold on one job: the ledger record, written CAS, and a heartbeat thread
    that flushes progress at most once a second and keeps the queue lease alive."""

    def __init__(self, ledger: Ledger, queue: JobQueue, delivery: Delivery, state: JobState, gen: str,
                 lease_seconds: float):
        self.ledger, self.queue, self.delivery = ledger, queue, delivery
        self.lease = lease_seconds
        self.state, self.gen = state, gen
        self.phase = "query"
        self._lock = threading.Lock()
        self._dirty = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{state.id}")

    def __enter__(self) -> "_Claim":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def progress(self, fraction: float, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self.state = self.state.model_copy(update={"progress": fraction})
            self._dirty = True

    def save(self, **changes) -> None:
        """Only what was written becomes this claim's state (a failed write changes nothing)."""
        with self._lock:
            state = self.state.model_copy(update={**changes, "heartbeat": utcnow()})
            self.gen = self.ledger.put(state, self.gen)
            self.state, self._dirty = state, False

    def _beat(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                due = time.monotonic() - last_beat > self.lease / 3
                if self._dirty or due:
                    self.save()
                if due:
                    self.queue.extend(self.delivery, self.lease)
                    last_beat = time.monotonic()
            except PreconditionFailed:
                job_log(self.state.id).warning("job %s: ledger changed under us; another consumer took over",
                                               self.state.id)
                return
            except Exception:  # a missed heartbeat is not worth failing the job for
                job_log(self.state.id).exception("job %s: heartbeat failed", self.state.id)


class _Retry(Exception):
    """The delivery was handed back to the queue; do not ack it."""


class InstitutionShare:
    """How many jobs each institution is running in this consumer: shared by its job slots, so
    one institution's burst cannot take every slot while another institution's request waits."""

    def __init__(self, per_institution: int):
        self.per_institution = per_institution
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}

    def take(self, institution_id: int) -> bool:
        with self._lock:
            if self._running.get(institution_id, 0) >= self.per_institution:
                return False
            self._running[institution_id] = self._running.get(institution_id, 0) + 1
            return True

    def give_back(self, institution_id: int) -> None:
        with self._lock:
            self._running[institution_id] -= 1
            if not self._running[institution_id]:
                del self._running[institution_id]


class JobRunner:
    """Everything a consumer does, with no Ray in sight (the actor shell adds the loop)."""

    def __init__(self, settings, queue: JobQueue, storage: Storage, warehouse: Warehouse,
                 notifier: Notifier, render: Renderer = render_serially, worker_id: str | None = None,
                 fetch: Fetcher = fetch_here, share: InstitutionShare | None = None):
        self.settings, self.queue, self.storage = settings, queue, storage
        self.warehouse, self.notifier, self.render, self.fetch = warehouse, notifier, render, fetch
        self.share = share
        self.busy = False  # handling a delivery now
        self.deferred = False  # the last delivery went to the back of the queue (its institution's share was full)
        self.ledger = Ledger(storage)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def run_once(self, wait_seconds: float = 1.0, stopping: Callable[[], bool] = lambda: False) -> bool:
        """Handle at most one delivery; False when the queue had nothing. A delivery that
        arrives once ``stopping()`` is true is handed straight back for another consumer."""
        self.deferred = False
        got = self.queue.pull(1, self.settings.lease_seconds, wait_seconds)
        if got and stopping():
            for delivery in got:
                self.queue.nack(delivery, delay_seconds=0)
            return False
        for delivery in got:
            self.busy = True
            try:
                self.handle(delivery)
            except Exception:
                # e.g. the ledger's storage is down: hand the message back now rather than let
                # the queue client keep renewing a lease nobody works on.
                self.queue.nack(delivery, delay_seconds=min(MAX_BACKOFF, 2.0 ** delivery.attempt))
                raise
            finally:
                self.busy = False
        return bool(got)

    def handle(self, delivery: Delivery) -> None:
        try:
            job, legacy = read_message(delivery.data, delivery.message_id, self.settings.timezone)
        except ValueError as exc:
            job_log(delivery.message_id).error("message %s cannot be parsed; dead-lettered: %s",
                                               delivery.message_id, exc)
            self.queue.dead_letter(delivery, f"unparseable: {exc}"[:1000])
            return
        job_id = job.job_id
        jlog = job_log(job_id)
        found = self.ledger.get(job_id)
        if found is None and legacy:  # a version-1 message: nobody recorded it before publishing
            self.ledger.create(JobState.accepted(job))
            found = self.ledger.get(job_id)
        if found is None:
            jlog.warning("job %s has no ledger record (its request was withdrawn); message dropped", job_id)
            self.queue.ack(delivery)
            return
        state, gen = found
        if state.job is not None and state.job != job:
            # Another request under this id: a queue that numbers messages afresh (an emulator
            # restarted) reused a version-1 message's id.
            jlog.error("message %s names job %s, which is another request; dead-lettered",
                       delivery.message_id, job_id)
            self.queue.dead_letter(delivery, f"job id {job_id} already names another request")
            return
        if state.notified:
            jlog.info("job %s already delivered; duplicate message acked", job_id)
            self.queue.ack(delivery)
            return
        if state.worker not in (None, self.worker_id) and (wait := self._until_stale(state)) > 0:
            # Back exactly when the claim would be stale: a consumer that died just after a
            # heartbeat is taken over one lease after it, not one lease after this redelivery.
            jlog.info("job %s is held by %s; retry in %.1f s", job_id, state.worker, wait)
            self.queue.nack(delivery, delay_seconds=wait)
            return
        if self.share is None:
            self._claim_and_run(job, delivery, state, gen)
        elif not self.share.take(job.institution_id):
            self._defer(job, delivery)
        else:
            try:
                self._claim_and_run(job, delivery, state, gen)
            finally:
                self.share.give_back(job.institution_id)

    def _defer(self, job: CatalogJob, delivery: Delivery) -> None:
        """To the back of the queue, as a fresh message for the same job (its ledger record is
        untouched): a nack would count a delivery attempt towards the dead-letter limit."""
        job_log(job.job_id).info("job %s: institution %s has %d jobs running here; sent to the back of the queue",
                                 job.job_id, job.institution_id, self.share.per_institution)
        try:
            self.queue.publish(job.to_bytes())
        except Exception:
            self.queue.nack(delivery, delay_seconds=1)
        else:
            self.queue.ack(delivery)
        self.deferred = True
        metrics.deferred_jobs().inc()

    def _claim_and_run(self, job: CatalogJob, delivery: Delivery, state: JobState, gen: str) -> None:
        job_id, jlog = job.job_id, job_log(job.job_id)
        finished = state.status in (Status.done, Status.failed)
        claim_update = {"worker": self.worker_id, "heartbeat": utcnow()}
        if not finished:
            claim_update |= {"status": Status.running, "attempts": state.attempts + 1, "error": None}
        try:
            gen = self.ledger.put(state.model_copy(update=claim_update), gen)
        except PreconditionFailed:
            self.queue.nack(delivery, delay_seconds=1)
            return
        state, gen = self.ledger.get(job_id)
        if not finished and state.attempts == 1:
            metrics.queue_lag_seconds().observe((utcnow() - state.created_at).total_seconds())
        with _Claim(self.ledger, self.queue, delivery, state, gen, self.settings.lease_seconds) as claim:
            try:
                if not finished and not self._run(job, delivery, claim):
                    return
                self._notify(job, claim)
            except _Retry:
                return
            except PreconditionFailed:
                jlog.warning("job %s: another consumer took the job over", job_id)
                self.queue.nack(delivery, delay_seconds=self.settings.lease_seconds)
                return
        self.queue.ack(delivery)

    def _run(self, job: CatalogJob, delivery: Delivery, claim: _Claim) -> bool:
        """Produce, store and record the file (or the final failure); False when the job was
        handed back to the queue for a retry. The link is made first: it needs no file, and a
        link that cannot be made then costs no work and leaves no file behind."""
        job_id = claim.state.id
        try:
            claim.progress(0.0, "link")
            url, expires = self.storage.link(job.object_key, self.settings.link_ttl_seconds)
            produced = self._produce_and_store(job, claim)
            claim.save(status=Status.done, progress=1.0, rows=produced.rows, url=url, expires_at=expires,
                       object_key=job.object_key, finished_at=utcnow(),
                       timings={k: round(v, 4) for k, v in produced.timings.items()})
            return True
        except PreconditionFailed:
            raise
        except Exception as exc:
            runs = claim.state.attempts
            job_log(job_id).warning("job %s failed in %s (run %d): %r", job_id, claim.phase, runs, exc)
            if runs < self.settings.max_delivery_attempts:
                claim.save(status=Status.queued, worker=None)
                self.queue.nack(delivery, delay_seconds=min(MAX_BACKOFF, 2.0 ** runs))
                return False
            reason = PHASE_ERRORS.get(claim.phase, "an internal error occurred")
            claim.save(status=Status.failed, error=f"The report could not be generated: {reason}.",
                       finished_at=utcnow(), object_key=self._discard(job))
            return True

    def _discard(self, job: CatalogJob) -> str | None:
        """Remove whatever a failed job uploaded; its key if that failed, so the record still
        points at the object (a failed job never leaves one nobody knows of)."""
        try:
            self.storage.delete(job.object_key)
            return None
        except Exception:
            job_log(job.job_id).exception("job %s: could not remove its file %s", job.job_id, job.object_key)
            return job.object_key

    def _notify(self, job: CatalogJob, claim: _Claim) -> None:
        """Send the one notification, holding the claim (heartbeat and lease run meanwhile, so
        no other consumer can notify too), then record it."""
        state = claim.state
        note = Notification(
            status="done" if state.status is Status.done else "failed",
            job_id=state.id, user_id=job.user_id, institution_id=job.institution_id,
            subdomain=job.subdomain, url=state.url, expires_at=state.expires_at,
            file_name=job.file_name, rows=state.rows, error=state.error,
        )
        jlog = job_log(state.id)
        started = time.perf_counter()
        try:
            self.notifier.send(note)
        except NotificationRejected as exc:
            jlog.error("job %s: notification refused, not retried: %s", state.id, exc)
        except Exception as exc:
            jlog.warning("job %s: notification not delivered yet (%r); will retry", state.id, exc)
            claim.save(worker=None)
            self.queue.nack(claim.delivery, delay_seconds=min(MAX_BACKOFF, 2.0 ** claim.delivery.attempt))
            raise _Retry() from exc
        claim.save(notified=True)  # final: the worker stays on record
        try:
            self.ledger.unlist(state.id)
        except Exception:  # the reconciler unlists notified jobs too
            jlog.warning("job %s: could not leave the index of pending jobs", state.id, exc_info=True)
        metrics.phase_seconds().observe(time.perf_counter() - started, {"phase": "notify"})
        metrics.jobs().inc(1, {"status": state.status.value})
        if state.finished_at:
            metrics.job_seconds().observe((state.finished_at - state.created_at).total_seconds())
        jlog.info("job %s %s and notified (%s rows)", state.id, state.status.value, state.rows)

    def _produce_and_store(self, job: CatalogJob, claim: _Claim) -> Produced:
        # The zone the request was accepted with (a version-1 message: this service's default).
        query = CatalogQuery.for_dates(job.institution_id, job.start_date, job.end_date,
                                       ZoneInfo(job.timezone), job.school_ids)
        with tempfile.TemporaryDirectory(prefix="catalog-") as tmp:
            out = Path(tmp) / job.file_name
            produced = produce_report(self.warehouse, query, subdomain=job.subdomain,
                                      options=self.settings.report, out=out, fetch=self.fetch, render=self.render,
                                      progress=claim.progress)
            claim.progress(0.95, "store")
            started = time.perf_counter()
            self.storage.put_file(job.object_key, out, XLSX_TYPE, job.file_name)
            produced.timings["store"] = time.perf_counter() - started
        for phase, seconds in produced.timings.items():
            metrics.phase_seconds().observe(seconds, {"phase": phase})
        if produced.rows:  # Ray counters refuse an increment of 0
            metrics.rows_rendered().inc(produced.rows)
        job_log(job.job_id).info("job %s: %d rows, %d bytes, timings %s", job.job_id, produced.rows, produced.size,
                             {k: round(v, 3) for k, v in produced.timings.items()})
        return produced

    def _until_stale(self, state: JobState) -> float:
        """Seconds until the claim's heartbeat is a lease old: a claim that old belongs to a
        consumer that died (a live one writes it every lease/3); 0 when it is already."""
        if state.heartbeat is None:
            return 0.0
        left = self.settings.lease_seconds - (utcnow() - state.heartbeat).total_seconds()
        return left + STALE_MARGIN if left > 0 else 0.0


class ConsumerLoop:
    """The actor shell: builds the backends from settings and runs one :class:`JobRunner` per
    job slot, each in a thread, so the actor's event loop stays free for health checks, stats
    and autoscaling reports."""

    def __init__(self, settings_values: dict, render_workers: int | None = None):
        from actors.report.fetch import fetch_on_ray
        from actors.runtime.priority import as_background
        from actors.notify import open_notifier
        from actors.queue import open_queue
        from actors.job.readiness import BackendChecks
        from actors.job.reconciler import Reconciler
        from actors.report.render import RayRenderer
        from actors.config.settings import load_settings
        from actors.storage import open_storage
        from actors.warehouse.on_demand import OnDemandWarehouse

        as_background()
        # Ray gives workers OMP_NUM_THREADS=1, which Arrow takes as its thread-pool size; this
        # process sorts and cuts the report while no chunk of it renders yet: let it use the node.
        pa.set_cpu_count(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
        self.settings = load_settings(**settings_values)
        renderer = RayRenderer(render_workers or self.settings.render_workers)
        # Nothing here needs a backend to answer: a consumer that is down cannot say what is
        # wrong, and its jobs would wait unseen. A backend that is down fails the jobs that need
        # it (retried, then failed and notified) and shows in backends().
        queue, storage = open_queue(self.settings.queue_url), open_storage(self.settings.storage_url, self.settings.links)
        warehouse, notifier = OnDemandWarehouse(self.settings.warehouse_url), open_notifier(self.settings.notify_url, self.settings.notify)
        share = InstitutionShare(self.settings.institution_jobs)
        base = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # One runner per job slot, each its own claimant: two slots must never both hold a job.
        self.runners = [JobRunner(self.settings, queue, storage, warehouse, notifier, render=renderer.render,
                                  worker_id=f"{base}/{slot}", fetch=fetch_on_ray, share=share)
                        for slot in range(self.settings.consumer_jobs)]
        self.reconciler = Reconciler(self.settings, queue, storage, holder=base)
        self.checks = BackendChecks(queue, storage, self.settings.warehouse_url,
                                    self.settings.readiness_reuse_seconds)
        self.handled, self._count_lock = 0, threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(runner,), daemon=True, name=f"consumer-slot-{i}")
                         for i, runner in enumerate(self.runners)]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._reconcile, daemon=True, name="reconciler").start()

    def _loop(self, runner: JobRunner) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if runner.run_once(wait_seconds=1.0, stopping=self._stop.is_set):
                    with self._count_lock:
                        self.handled += 1
                if runner.deferred:  # only its institution's further jobs may be waiting: not a busy loop
                    self._stop.wait(0.25)
                failures = 0
            except Exception:
                # e.g. the queue or the ledger is down: said once per attempt, ever less often
                failures += 1
                pause = min(MAX_BACKOFF / 2, 2.0 ** (failures - 1))
                log.exception("consumer loop error (%d in a row); next try in %.0f s", failures, pause)
                self._stop.wait(pause)

    def load(self) -> dict[str, float]:
        """What the autoscaling policy weighs (actors/job/autoscaling.py)."""
        backlog = Backlog.read(self.runners[0].ledger)
        return {"pending": backlog.pending, "oldest_queued_s": backlog.oldest_queued_s,
                "running": sum(runner.busy for runner in self.runners), "slots": len(self.runners)}

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


def consumer_deployment():
    """The consumer as a Serve deployment, so one Serve application (or config file) deploys the
    HTTP API and its consumer together, and Serve restarts the consumer if it dies."""
    from ray import serve

    @serve.deployment(name="JobConsumer", num_replicas=1, ray_actor_options={"num_cpus": 0},
                      health_check_period_s=5, logging_config={"encoding": "JSON"},
                      graceful_shutdown_timeout_s=DRAIN_SECONDS)
    class JobConsumer:
        def __init__(self, settings_values: dict):
            use_serve_log_files()
            self.loop = ConsumerLoop(settings_values)

        def check_health(self) -> None:
            if not self.loop.alive():
                raise RuntimeError("consumer loop stopped")

        async def record_autoscaling_stats(self) -> dict[str, float]:
            """For the backlog policy, when the deployment autoscales (serve_app.app.build_app)."""
            import asyncio

            return await asyncio.to_thread(self.loop.load)

        def handled(self) -> int:
            return self.loop.handled

        async def backends(self) -> dict[str, str | None]:
            import asyncio

            return await asyncio.to_thread(self.loop.backends)

        async def __del__(self):
            """Serve's graceful shutdown (a scale-down too): the running jobs finish first."""
            import asyncio

            if loop := getattr(self, "loop", None):  # absent when __init__ failed
                await asyncio.to_thread(loop.stop)

    return JobConsumer
