"""The consumer: one delivery from message to ack. The job's states and the steps between them
are named in :mod:`actors.job.state`; here each step is taken and written compare-and-swap.

The ledger record is the idempotency key: a redelivered message whose job is already notified
is acked without work, a job claimed by a live consumer is left to it, a claim whose heartbeat
stopped (its consumer died) is taken over. Unparseable messages are dead-lettered at once. A
delivery goes back to the queue one way only: :meth:`JobRunner._hand_back`.
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

from actors.job.ledger import Ledger
from actors.job.message import CatalogJob, read_message, utcnow
from actors.job.options import RunnerOptions
from actors.job.state import WITHDRAWN, JobState
from actors.notify import Notification, NotificationRejected, Notifier
from actors.observability import metrics
from actors.observability.logs import job_log
from actors.queue import Delivery, JobQueue
from actors.report.fetch import Fetcher, fetch_here
from actors.report.formats import FORMATS
from actors.report.pipeline import Produced, produce_report
from actors.report.render import Renderer, render_serially
from actors.storage import PreconditionFailed, Storage
from actors.warehouse import CatalogQuery, Warehouse

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # progress is written at most this often
MAX_BACKOFF = 60.0
STALE_MARGIN = 0.5  # seconds past a claim's staleness before it is retried (clocks and rounding)

PHASE_ERRORS = {
    "link": "its download link could not be created",
    "query": "the data warehouse could not be queried",
    "render": "the spreadsheet could not be rendered",
    "merge": "the spreadsheet could not be assembled",
    "store": "the file could not be stored",
}


def backoff(attempt: int, cap: float = MAX_BACKOFF) -> float:
    """Seconds before try ``attempt + 1``: doubling from 1 s, at most ``cap``."""
    return min(cap, 2.0**attempt)


def worker_name() -> str:
    """This process, unique across restarts: what a claim in the ledger names."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class HandedBack(Exception):
    """The delivery was handed back to the queue (nacked): it must not be acked."""


class Canceled(Exception):
    """The job's requester canceled it while it ran (its record says ``canceled``)."""


class _Claim:
    """This consumer's hold on one job: the ledger record, written CAS, and a heartbeat thread
    that flushes progress at most once a second and keeps the queue lease alive."""

    def __init__(
        self,
        ledger: Ledger,
        queue: JobQueue,
        delivery: Delivery,
        state: JobState,
        gen: str,
        lease_seconds: float,
        on_cancel: Callable[[], None] = lambda: None,
    ):
        self.ledger, self.queue, self.delivery = ledger, queue, delivery
        self.on_cancel = on_cancel  # once, when the cancel is first seen: stop the job's warehouse read
        self.lease = lease_seconds
        self.state, self.gen = state, gen
        self.phase = "query"
        self._lock = threading.Lock()
        self._dirty = False
        self.canceled = threading.Event()  # seen in the ledger: stop at the next progress step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{state.id}")

    def __enter__(self) -> _Claim:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def progress(self, fraction: float, phase: str) -> None:
        """Record progress; raise :class:`Canceled` once the ledger says the job was canceled
        (called between render chunks, so a canceled job stops within a chunk's time)."""
        if self.canceled.is_set():
            raise Canceled()
        with self._lock:
            self.phase = phase
            self.state = self.state.progressed(fraction)
            self._dirty = True

    def save(self, step: Callable[[JobState], JobState] = lambda state: state) -> None:
        """Write ``step`` of the current state, with a fresh heartbeat. Only what was written
        becomes this claim's state (a failed write changes nothing)."""
        with self._lock:
            state = step(self.state).model_copy(update={"heartbeat": utcnow()})
            self.gen = self.ledger.put(state, self.gen)
            self.state, self._dirty = state, False

    def was_canceled(self) -> bool:
        """Whether the record's change under this claim is its requester's: canceled, or (a
        finished job) deleted. Flagged, so the job stops at its next progress step."""
        found = self.ledger.get(self.state.id)
        if found is not None and found[0].status in WITHDRAWN and not self.canceled.is_set():
            self.canceled.set()
            self.on_cancel()
        return self.canceled.is_set()

    def _beat(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                due = time.monotonic() - last_beat > self.lease / 3
                if self._dirty or due:
                    self.save()  # a cancel makes it fail: seen below
                elif self.was_canceled():  # nothing to write (a long query): look, so a cancel is seen soon
                    job_log(log, self.state.id).info("job %s: withdrawn by its requester; stopping", self.state.id)
                    return
                if due:
                    self.queue.extend(self.delivery, self.lease)
                    last_beat = time.monotonic()
            except PreconditionFailed:
                if self.was_canceled():
                    job_log(log, self.state.id).info("job %s: withdrawn by its requester; stopping", self.state.id)
                else:
                    job_log(log, self.state.id).warning(
                        "job %s: ledger changed under us; another consumer took over", self.state.id
                    )
                return
            except Exception:  # a missed heartbeat is not worth failing the job for
                job_log(log, self.state.id).exception("job %s: heartbeat failed", self.state.id)


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
    """Everything a consumer job slot does, with no Ray in sight (:mod:`actors.job.deployment`
    adds the threads and the Serve replica)."""

    def __init__(
        self,
        options: RunnerOptions,
        queue: JobQueue,
        storage: Storage,
        warehouse: Warehouse,
        notifier: Notifier,
        render: Renderer = render_serially,
        worker_id: str | None = None,
        fetch: Fetcher = fetch_here,
        share: InstitutionShare | None = None,
    ):
        self.options, self.queue, self.storage = options, queue, storage
        self.warehouse, self.notifier, self.render, self.fetch = warehouse, notifier, render, fetch
        self.share = share
        self.busy = False  # handling a delivery now
        self.deferred = False  # the last delivery went to the back of the queue (its institution's share was full)
        self.ledger = Ledger(storage)
        self.worker_id = worker_id or worker_name()

    def run_once(self, wait_seconds: float = 1.0, stopping: Callable[[], bool] = lambda: False) -> bool:
        """Handle at most one delivery; False when the queue had nothing. A delivery that
        arrives once ``stopping()`` is true is handed straight back for another consumer."""
        self.deferred = False
        got = self.queue.pull(1, self.options.lease_seconds, wait_seconds)
        if got and stopping():
            for delivery in got:
                self.queue.nack(delivery, delay_seconds=0)
            return False
        for delivery in got:
            self.busy = True
            try:
                self.handle(delivery)
            except HandedBack:
                pass
            except Exception:
                # e.g. the ledger's storage is down: hand the message back now rather than let
                # the queue client keep renewing a lease nobody works on.
                self.queue.nack(delivery, delay_seconds=backoff(delivery.attempt))
                raise
            finally:
                self.busy = False
        return bool(got)

    def _hand_back(self, delivery: Delivery, delay_seconds: float) -> None:
        """Nack: the queue delivers the message again after the delay (to any consumer)."""
        self.queue.nack(delivery, delay_seconds=delay_seconds)
        raise HandedBack()

    def handle(self, delivery: Delivery) -> None:
        """Settle one delivery: ack, dead-letter, or (raising :class:`HandedBack`) nack."""
        try:
            job, legacy = read_message(delivery.data, delivery.message_id, self.options.default_timezone)
        except ValueError as exc:
            job_log(log, delivery.message_id).error(
                "message %s cannot be parsed; dead-lettered: %s", delivery.message_id, exc
            )
            self.queue.dead_letter(delivery, f"unparseable: {exc}"[:1000])
            return
        job_id = job.job_id
        jlog = job_log(log, job_id)
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
            jlog.error("message %s names job %s, which is another request; dead-lettered", delivery.message_id, job_id)
            self.queue.dead_letter(delivery, f"job id {job_id} already names another request")
            return
        if state.notified:
            jlog.info("job %s already delivered; duplicate message acked", job_id)
            self.queue.ack(delivery)
            return
        if state.status in WITHDRAWN:
            jlog.info("job %s was %s by its requester; message acked", job_id, state.status.value)
            self.queue.ack(delivery)
            self._unlist(job_id)
            return
        if state.worker not in (None, self.worker_id) and (wait := self._until_stale(state)) > 0:
            # Back exactly when the claim would be stale: a consumer that died just after a
            # heartbeat is taken over one lease after it, not one lease after this redelivery.
            jlog.info("job %s is held by %s; retry in %.1f s", job_id, state.worker, wait)
            self._hand_back(delivery, wait)
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
        job_log(log, job.job_id).info(
            "job %s: institution %s has %d jobs running here; sent to the back of the queue",
            job.job_id,
            job.institution_id,
            self.share.per_institution,
        )
        self.deferred = True
        metrics.deferred_jobs().inc()
        try:
            self.queue.publish(job.to_bytes())
        except Exception:
            self._hand_back(delivery, 1)
        self.queue.ack(delivery)

    def _claim_and_run(self, job: CatalogJob, delivery: Delivery, state: JobState, gen: str) -> None:
        """Claim the job (or, finished but not notified, hold it), run it unless it is
        finished, notify, ack."""
        job_id = job.job_id
        finished = state.finished
        try:
            gen = self.ledger.put(state.held(self.worker_id) if finished else state.claimed(self.worker_id), gen)
        except PreconditionFailed:
            self._hand_back(delivery, 1)
        state, gen = self.ledger.get(job_id)
        if not finished and state.attempts == 1:
            metrics.queue_lag_seconds().observe((utcnow() - state.created_at).total_seconds())
        reader = threading.get_ident()  # the thread that runs the job, and reads the warehouse for it
        with _Claim(
            self.ledger,
            self.queue,
            delivery,
            state,
            gen,
            self.options.lease_seconds,
            on_cancel=lambda: self.warehouse.interrupt(reader),
        ) as claim:
            try:
                if not finished:
                    self._run(job, delivery, claim)
                self._notify(job, claim)
            except (Canceled, PreconditionFailed) as exc:
                if not claim.was_canceled():
                    job_log(log, job_id).warning("job %s: another consumer took the job over", job_id)
                    self._hand_back(delivery, self.options.lease_seconds)
                self._stopped(job, exc)
        self.queue.ack(delivery)

    def _stopped(self, job: CatalogJob, how: Exception) -> None:
        """A job withdrawn by its requester leaves nothing behind: whatever it uploaded is removed
        (a canceled record has no key to it, a deleted one no longer), and it is not notified
        (a finished job deleted while its notification went out has had that one)."""
        job_log(log, job.job_id).info("job %s withdrawn (%s); its work dropped", job.job_id, type(how).__name__)
        self._discard(job)
        self._unlist(job.job_id)

    def _run(self, job: CatalogJob, delivery: Delivery, claim: _Claim) -> None:
        """Produce, store and record the file, or the final failure; a transient failure with
        attempts left hands the job back to the queue. The link is made first: it needs no
        file, and a link that cannot be made then costs no work and leaves no file behind. A
        file stored whose success cannot be recorded is a failure too (and is removed)."""
        job_id = claim.state.id
        try:
            claim.progress(0.0, "link")
            url, expires = self.storage.link(job.object_key, self.options.link_ttl_seconds)
            produced = self._produce_and_store(job, claim)
            claim.save(
                lambda state: state.succeeded(
                    rows=produced.rows,
                    url=url,
                    expires_at=expires,
                    object_key=job.object_key,
                    timings=produced.timings,
                    size_bytes=produced.size,
                )
            )
        except (PreconditionFailed, Canceled):
            raise
        except Exception as exc:
            if claim.canceled.is_set():  # its query interrupted, or any step that failed after the cancel
                raise Canceled() from exc
            runs = claim.state.attempts
            job_log(log, job_id).warning("job %s failed in %s (run %d): %r", job_id, claim.phase, runs, exc)
            if runs < self.options.max_delivery_attempts:
                claim.save(JobState.retried)
                self._hand_back(delivery, backoff(runs))
            reason = PHASE_ERRORS.get(claim.phase, "an internal error occurred")
            leftover = self._discard(job)
            claim.save(lambda state: state.failed(f"The report could not be generated: {reason}.", leftover))

    def _unlist(self, job_id: str) -> None:
        try:
            self.ledger.unlist(job_id)
        except Exception:  # the reconciler unlists notified and withdrawn jobs too
            job_log(log, job_id).warning("job %s: could not leave the index of pending jobs", job_id, exc_info=True)

    def _discard(self, job: CatalogJob) -> str | None:
        """Remove whatever a failed job uploaded; its key if that failed, so the record still
        points at the object (a failed job never leaves one nobody knows of)."""
        try:
            self.storage.delete(job.object_key)
            return None
        except Exception:
            job_log(log, job.job_id).exception("job %s: could not remove its file %s", job.job_id, job.object_key)
            return job.object_key

    def _notify(self, job: CatalogJob, claim: _Claim) -> None:
        """Send the one notification, holding the claim (heartbeat and lease run meanwhile, so
        no other consumer can notify too), then record it."""
        state = claim.state
        note = Notification(
            status="done" if state.status == "done" else "failed",
            job_id=state.id,
            user_id=job.user_id,
            institution_id=job.institution_id,
            subdomain=job.subdomain,
            url=state.url,
            expires_at=state.expires_at,
            file_name=job.file_name,
            rows=state.rows,
            error=state.error,
        )
        jlog = job_log(log, state.id)
        started = time.perf_counter()
        try:
            self.notifier.send(note)
        except NotificationRejected as exc:
            jlog.error("job %s: notification refused, not retried: %s", state.id, exc)
        except Exception as exc:
            jlog.warning("job %s: notification not delivered yet (%r); will retry", state.id, exc)
            claim.save(JobState.released)
            self._hand_back(claim.delivery, backoff(claim.delivery.attempt))
        claim.save(JobState.notified_now)  # final: the worker stays on record
        self._unlist(state.id)
        metrics.phase_seconds().observe(time.perf_counter() - started, {"phase": "notify"})
        metrics.jobs().inc(1, {"status": state.status.value})
        if state.finished_at:
            metrics.job_seconds().observe((state.finished_at - state.created_at).total_seconds())
        jlog.info("job %s %s and notified (%s rows)", state.id, state.status.value, state.rows)

    def _produce_and_store(self, job: CatalogJob, claim: _Claim) -> Produced:
        # The zone the request was accepted with (a version-1 message: this service's default).
        query = CatalogQuery.for_dates(
            job.institution_id, job.start_date, job.end_date, ZoneInfo(job.timezone), job.school_ids
        )
        with tempfile.TemporaryDirectory(prefix="catalog-") as tmp:
            out = Path(tmp) / job.file_name
            produced = produce_report(
                self.warehouse,
                query,
                subdomain=job.subdomain,
                options=self.options.report,
                out=out,
                locale=job.locale,
                file_format=job.format,
                canceled=claim.canceled.is_set,
                fetch=self.fetch,
                render=self.render,
                progress=claim.progress,
            )
            claim.progress(0.95, "store")
            started = time.perf_counter()
            self.storage.put_file(job.object_key, out, FORMATS[job.format].CONTENT_TYPE, job.file_name)
            produced.timings["store"] = time.perf_counter() - started
        for phase, seconds in produced.timings.items():
            metrics.phase_seconds().observe(seconds, {"phase": phase})
        if produced.rows:  # Ray counters refuse an increment of 0
            metrics.rows_rendered().inc(produced.rows)
        job_log(log, job.job_id).info(
            "job %s: %d rows, %d bytes, timings %s",
            job.job_id,
            produced.rows,
            produced.size,
            {k: round(v, 3) for k, v in produced.timings.items()},
        )
        return produced

    def _until_stale(self, state: JobState) -> float:
        """Seconds until the claim's heartbeat is a lease old: a claim that old belongs to a
        consumer that died (a live one writes it every lease/3); 0 when it is already."""
        if state.heartbeat is None:
            return 0.0
        left = self.options.lease_seconds - (utcnow() - state.heartbeat).total_seconds()
        return left + STALE_MARGIN if left > 0 else 0.0
