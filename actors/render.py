"""Render chunks of the report into deflated sheet XML, in parallel on a pool of Ray actors.

The actors are thin: :func:`assemble` and :func:`render_part` are pure, and are what tests and
the single-process path call directly. A report's rows stay where they were fetched, as Arrow IPC
streams in the object store (one per warehouse partition); each chunk is a few index arrays
saying which of those rows it holds, so no process ever gathers the whole report. An actor maps
the partitions (zero-copy), takes its chunk's rows into memory of its own, and lets go of the
partitions' pages *before* it renders: the pages a take touched all over the partitions are not
held while the XML is built, so its peak is the larger of the two, not their sum. (A separate
task per chunk doing the take, tried before, cost ~95 ms a chunk in scheduling and copies and
left the actors waiting: 2 actors rendered slower than one process.) Each actor is kept two
chunks deep, so it never waits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import ray

from actors.memory import forget_object_store, forget_pages, trim_private
from actors.niceness import as_background
from actors.partition import Chunk, ChunkRows
from actors.xlsx.deflate import DeflatedPart, PartWriter
from actors.xlsx.rows import Column, render_rows

DEPTH = 2  # chunks queued on each actor at once
BATCH_ROWS = 32_768  # rows turned into XML at a time: an actor's working set, whatever the chunk size


def render_chunk(report: pa.Table, chunk: Chunk, columns: list[Column] | None = None) -> DeflatedPart:
    return render_part(report.slice(chunk.offset, chunk.length), chunk.first_row, columns)


def render_part(rows: pa.Table, first_row: int, columns: list[Column] | None = None) -> DeflatedPart:
    """Sheet XML for ``rows``, deflated batch by batch into one part."""
    part = PartWriter()
    for start in range(0, rows.num_rows, BATCH_ROWS):
        part.write(render_rows(rows.slice(start, BATCH_ROWS), first_row + start, columns))
    return part.finish()


def assemble(partitions: dict[int, pa.Table], rows: ChunkRows,
             taken: Callable[[pa.ChunkedArray], None] = lambda column: None) -> pa.Table:
    """One chunk's rows, in report order, from the partitions they were fetched in, a column at
    a time; ``taken(column)`` once each partition's column has been read (to let go of it)."""
    first = partitions[rows.partitions[0]]
    columns = []
    for name in first.column_names:
        pieces = []
        for p, indices in rows.picks:
            source = partitions[p][name]
            pieces += source.take(indices).chunks
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


def ipc(rows: pa.Table) -> pa.Buffer:
    """``rows`` as one Arrow IPC stream: what an actor can map without copying."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return sink.getvalue()


def read_ipc(buffer: pa.Buffer) -> pa.Table:
    return pa.ipc.open_stream(buffer).read_all()  # zero-copy over the buffer


@ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=3)
class RenderWorker:
    """One render process; restarted and its task retried if it (or its node) dies."""

    def __init__(self):
        as_background()

    def render(self, rows: ChunkRows, first_row: int, columns: list[Column] | None,
               *partitions: pa.Buffer) -> DeflatedPart:
        """``partitions``: the IPC streams ``rows`` picks from, mapped from the object store."""
        # Each column's pages are let go of as soon as it is taken: the take touched pages all
        # over the partition, and holding them all at once cost ~80 MB of resident memory.
        table = assemble(dict(zip(rows.partitions, map(read_ipc, partitions), strict=True)), rows, _forget_column)
        part = render_part(table, first_row, columns)
        del table
        trim_private()  # an idle actor holds little of the chunks' XML
        forget_object_store()  # nor the pages of earlier chunks' rows and results
        return part


Renderer = Callable[[list, list[Chunk], list[ChunkRows], list[Column], Callable[[int], None]], list[DeflatedPart]]


def render_serially(partitions: list[pa.Buffer], plan: list[Chunk], rows: list[ChunkRows], columns: list[Column],
                    on_done: Callable[[int], None]) -> list[DeflatedPart]:
    """The :data:`Renderer` of one process (tests, and the pipeline without Ray)."""
    tables = dict(enumerate(map(read_ipc, partitions)))
    parts = []
    for chunk, chunk_rows in zip(plan, rows, strict=True):
        parts.append(render_part(assemble(tables, chunk_rows), chunk.first_row, columns))
        on_done(len(parts))
    return parts


class RenderPool:
    """A fixed set of :class:`RenderWorker` actors reused across jobs, spread over the cluster's
    nodes (Ray's SPREAD strategy) so one node's loss takes only its share of the pool."""

    def __init__(self, workers: int, name_prefix: str | None = None, cpus_per_actor: float = 1):
        self.actors = []
        for i in range(workers):
            opts: dict = {"num_cpus": cpus_per_actor, "scheduling_strategy": "SPREAD"}
            if name_prefix:
                opts |= {"name": f"{name_prefix}-{i}", "get_if_exists": True}
            self.actors.append(RenderWorker.options(**opts).remote())
        self._placed = {actor.__ray_ready__.remote(): actor for actor in self.actors}

    def _working(self) -> list:
        """The actors the cluster has placed (at least one, waiting for it if need be): an actor
        still pending for want of resources must not be handed chunks it would never render."""
        refs = list(self._placed)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            ready, _ = ray.wait(refs, num_returns=1)
        return [self._placed[ref] for ref in ready]

    def render(self, partitions: list, plan: list[Chunk], rows: list[ChunkRows], columns: list[Column],
               on_done: Callable[[int], None]) -> list[DeflatedPart]:
        """The :data:`Renderer` on the pool: parts in plan order; ``partitions``: object refs (or
        buffers) of the fetched partitions' IPC streams; ``on_done(k)`` after k chunks finish."""
        refs = [p if isinstance(p, ray.ObjectRef) else ray.put(p) for p in partitions]
        todo = iter(enumerate(zip(plan, rows, strict=True)))
        running: dict = {}  # ObjectRef → (actor, chunk index)

        def feed(actor) -> None:
            """Queue the next chunk, if any, on ``actor``."""
            if (item := next(todo, None)) is not None:
                index, (chunk, chunk_rows) = item
                parts = (refs[p] for p in chunk_rows.partitions)
                running[actor.render.remote(chunk_rows, chunk.first_row, columns, *parts)] = (actor, index)

        for actor in self._working():
            for _ in range(DEPTH):
                feed(actor)
        parts: list = [None] * len(plan)
        for done in range(1, len(plan) + 1):
            [ref], _ = ray.wait(list(running), num_returns=1)
            actor, index = running.pop(ref)
            parts[index] = ray.get(ref)
            feed(actor)
            on_done(done)
        return parts

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)


def table_chunks(report: pa.Table, plan: list[Chunk]) -> tuple[list[pa.Buffer], list[ChunkRows]]:
    """A sorted report table as the one partition of its chunks (tests and benchmarks render
    whole tables through the same :data:`Renderer`)."""
    return [ipc(report)], [ChunkRows([(0, np.arange(c.offset, c.offset + c.length))], None, None) for c in plan]
