"""Render chunks of the report into deflated sheet XML, in parallel on a pool of Ray actors.

The actors are thin: :func:`render_chunk` is pure and is what tests and the single-process path
call directly. The report table is put in the object store once; each actor slices it
zero-copy, so a chunk costs one small task message, not a copy of its rows.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import ray
from ray.util import ActorPool

from actors.partition import Chunk
from actors.xlsx.deflate import DeflatedPart, deflate_part
from actors.xlsx.rows import render_rows


def render_chunk(report: pa.Table, chunk: Chunk) -> DeflatedPart:
    rows = report.slice(chunk.offset, chunk.length)
    return deflate_part(render_rows(rows, chunk.first_row))


@ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=3)
class RenderWorker:
    """One render process; restarted and its task retried if it (or its node) dies."""

    def render(self, report: pa.Table, chunk: Chunk) -> DeflatedPart:
        return render_chunk(report, chunk)


class RenderPool:
    """A fixed set of :class:`RenderWorker` actors reused across jobs."""

    def __init__(self, workers: int, name_prefix: str | None = None, cpus_per_actor: float = 1):
        self.actors = []
        for i in range(workers):
            opts: dict = {"num_cpus": cpus_per_actor}
            if name_prefix:
                opts |= {"name": f"{name_prefix}-{i}", "get_if_exists": True}
            self.actors.append(RenderWorker.options(**opts).remote())

    def render(
        self, report: pa.Table, plan: list[Chunk], on_done: Callable[[int], None] | None = None
    ) -> list[DeflatedPart]:
        """Parts in plan order; ``on_done(k)`` is called after each of the k chunks finishes."""
        ref = ray.put(report)
        pool = ActorPool(self.actors)
        for chunk in plan:
            pool.submit(lambda actor, c: actor.render.remote(ref, c), chunk)
        parts: list[DeflatedPart] = []
        while pool.has_next():
            parts.append(pool.get_next())
            if on_done:
                on_done(len(parts))
        return parts

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
