"""Render chunks of the report into parts of its file (deflated sheet XML, CSV text, a Parquet
row group: :mod:`actors.report.formats`), in parallel as Ray tasks.

The tasks are thin: :func:`assemble` and each format's ``render`` are pure, and are what tests and
the single-process path call directly. A report's rows are Arrow tables in the object store
(one per warehouse partition, or the report laid out in order: :func:`~actors.report.partition.lay_out`);
each chunk is a slice of one, or a few index arrays saying which of their rows it holds, so no
process ever gathers the whole report. A task maps the partitions (zero-copy) and takes its
chunk's rows into memory of its own, letting go of the partitions' pages *before* it renders:
the pages a take touched all over the partitions are not held while the XML is built, so its
peak is the larger of the two, not their sum.

Render capacity is the cluster's, not a consumer's: each chunk is a task asking for one CPU,
placed by Ray on whichever node has one (spread over the nodes), so every job of every consumer
draws on the same CPUs, a node added by hand or by Ray's autoscaler (which sees the tasks
waiting) is used by the next chunk, and a chunk lost with its node is run again elsewhere. No
setting can leave a job waiting for workers that never start: a chunk waits only for a CPU to
free. A job keeps a bounded number of chunks submitted, and the jobs of one process share that
fairly (:class:`RayRenderer`), so a small report is not queued behind a big one's chunks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import pyarrow as pa
import ray

from actors.report.formats import FORMATS
from actors.report.formats.xlsx import render_part
from actors.report.partition import Chunk, ChunkRows
from actors.report.xlsx.deflate import DeflatedPart
from actors.report.xlsx.rows import Column
from actors.runtime.memory import forget_object_store, forget_pages, trim_private
from actors.runtime.priority import as_background


def render_chunk(report: pa.Table, chunk: Chunk, columns: list[Column] | None = None) -> DeflatedPart:
    return render_part(report.slice(chunk.offset, chunk.length), chunk.first_row, columns)


def assemble(
    partitions: dict[int, pa.Table], rows: ChunkRows, taken: Callable[[pa.ChunkedArray], None] = lambda column: None
) -> pa.Table:
    """One chunk's rows, in report order, from the partitions they were fetched in, a column at
    a time (a slice of rows is not copied); ``taken(column)`` once rows were taken from a
    partition's column (to let go of the pages the take touched)."""
    first = partitions[rows.partitions[0]]
    columns = []
    for name in first.column_names:
        pieces = []
        for p, picked in rows.picks:
            source = partitions[p][name]
            if isinstance(picked, slice):
                pieces += source.slice(picked.start, picked.stop - picked.start).chunks
                continue
            pieces += source.take(picked).chunks
            taken(source)
        column = pa.chunked_array(pieces, first.schema.field(name).type)
        columns.append(column.take(rows.order) if rows.order is not None else column)
    table = pa.table(columns, schema=first.schema)
    return table.append_column("school", rows.school) if rows.school is not None else table


def _forget_column(column: pa.ChunkedArray) -> None:
    for chunk in column.chunks:
        for buffer in chunk.buffers():
            if buffer is not None:
                forget_pages(buffer)


def render_here(
    rows: ChunkRows,
    first_row: int,
    columns: list[Column] | None,
    *partitions: pa.Table,
    file_format: str = "xlsx",
    headers: Sequence[str] = (),
):
    """What a render task does in its worker process: the chunk as a part of a ``file_format``
    file. ``partitions``: the tables ``rows`` picks from, mapped from the object store."""
    as_background()
    # Each column's pages are let go of as soon as it is taken: the take touched pages all
    # over the partition, and holding them all at once cost ~80 MB of resident memory.
    table = assemble(dict(zip(rows.partitions, partitions, strict=True)), rows, _forget_column)
    part = FORMATS[file_format].render(table, first_row, columns, headers)
    del table
    trim_private()  # an idle worker holds little of the chunks' XML
    forget_object_store()  # nor the pages of earlier chunks' rows and results
    return part


# Retried (up to 3 times) when its worker or node dies; an error in the code is not retried.
render_task = ray.remote(num_cpus=1, max_retries=3, scheduling_strategy="SPREAD")(render_here)


class Renderer(Protocol):
    """Renders a plan's chunks into parts of a ``file_format`` file, in plan order."""

    def __call__(
        self,
        partitions: list,
        plan: list[Chunk],
        rows: list[ChunkRows],
        columns: list[Column],
        on_done: Callable[[int], None],
        *,
        file_format: str = "xlsx",
        headers: Sequence[str] = (),
    ) -> list: ...


def render_serially(
    partitions: list[pa.Table],
    plan: list[Chunk],
    rows: list[ChunkRows],
    columns: list[Column],
    on_done: Callable[[int], None],
    *,
    file_format: str = "xlsx",
    headers: Sequence[str] = (),
) -> list:
    """The :data:`Renderer` of one process (tests, and the pipeline without Ray)."""
    tables = dict(enumerate(partitions))
    render = FORMATS[file_format].render
    parts = []
    for chunk, chunk_rows in zip(plan, rows, strict=True):
        parts.append(render(assemble(tables, chunk_rows), chunk.first_row, columns, headers))
        on_done(len(parts))
    return parts


class _FairSlots:
    """The chunks this process may have submitted at once, shared by the jobs rendering at once:
    while several render, each may hold at most an equal share, so a small job's chunk waits for
    at most one of a big job's chunks to finish, never for the big job."""

    def __init__(self):
        self._lock = threading.Lock()
        self.held: dict[object, int] = {}  # job → slots it holds; a key per job inside render()

    def enter(self, job: object) -> None:
        with self._lock:
            self.held[job] = 0

    def leave(self, job: object) -> None:
        with self._lock:
            del self.held[job]

    def take(self, job: object, total: int) -> bool:
        with self._lock:
            share = max(1, total // len(self.held))
            if sum(self.held.values()) >= total or self.held[job] >= share:
                return False
            self.held[job] += 1
            return True

    def give_back(self, job: object) -> None:
        with self._lock:
            self.held[job] -= 1


class RayRenderer:
    """The :data:`Renderer` on Ray tasks. ``in_flight`` chunks at most are submitted at once by
    this process (0: one more than the cluster has CPUs, counted when a job starts rendering, so
    a node that joined counts): enough to keep every CPU busy with no gap between chunks, few
    enough that another job's chunk is not queued behind a long line of this one's. Several
    jobs may render at once, from several threads: they share those slots fairly."""

    def __init__(self, in_flight: int = 0, cpus_per_chunk: float = 1):
        self.in_flight, self.cpus_per_chunk = in_flight, cpus_per_chunk
        self._slots = _FairSlots()

    def _budget(self) -> int:
        if self.in_flight:
            return self.in_flight
        return max(1, int(ray.cluster_resources().get("CPU", 1) / self.cpus_per_chunk)) + 1

    def render(
        self,
        partitions: list,
        plan: list[Chunk],
        rows: list[ChunkRows],
        columns: list[Column],
        on_done: Callable[[int], None],
        *,
        file_format: str = "xlsx",
        headers: Sequence[str] = (),
    ) -> list:
        """Parts in plan order; ``partitions``: the fetched partitions' tables (or object refs
        of them); ``on_done(k)`` after k chunks finish."""
        refs = [p if isinstance(p, ray.ObjectRef) else ray.put(p) for p in partitions]
        task = render_task.options(num_cpus=self.cpus_per_chunk, name="render-chunk")
        budget = self._budget()
        running: dict = {}  # ObjectRef → chunk index
        parts: list = [None] * len(plan)
        submitted = done = 0
        me = object()
        self._slots.enter(me)
        try:
            while done < len(plan):
                while submitted < len(plan) and self._slots.take(me, budget):
                    chunk, chunk_rows = plan[submitted], rows[submitted]
                    ref = task.remote(
                        chunk_rows,
                        chunk.first_row,
                        columns,
                        *(refs[p] for p in chunk_rows.partitions),
                        file_format=file_format,
                        headers=headers,
                    )
                    running[ref] = submitted
                    submitted += 1
                if not running:  # every slot is another job's: one frees within a chunk's time
                    time.sleep(0.02)
                    continue
                # Alone, wait for our own chunks; beside other jobs, look again soon, since a slot
                # another job frees does not wake us.
                ready, _ = ray.wait(list(running), num_returns=1, timeout=None if len(self._slots.held) == 1 else 0.05)
                for ref in ready:
                    index = running.pop(ref)
                    self._slots.give_back(me)
                    parts[index] = ray.get(ref)
                    done += 1
                    on_done(done)
        finally:
            for ref in running:  # a failed job's other chunks are not wanted any more
                ray.cancel(ref)
            self._slots.leave(me)
        return parts


def table_chunks(report: pa.Table, plan: list[Chunk]) -> tuple[list[pa.Table], list[ChunkRows]]:
    """A sorted report table as the one partition of its chunks (tests and benchmarks render
    whole tables through the same :data:`Renderer`)."""
    return [report], [ChunkRows([(0, slice(c.offset, c.offset + c.length))], None, None) for c in plan]
