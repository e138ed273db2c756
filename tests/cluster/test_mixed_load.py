"""Many institutions on a real three-node cluster (tests/support/mixed_load_scenario.py in a subprocess):
40 jobs of mixed sizes, with settings that used to stall (more consumers x render workers than
the cluster has CPUs) and a node removed mid-run, each job done and notified exactly once, its
file byte-identical to the same report made in one process, render work on every node."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.support.scenario import run_script, show_timeline


@pytest.fixture(scope="module")
def four_institutions(tmp_path_factory) -> Path:
    from actors.warehouse.demo import generate

    path = tmp_path_factory.mktemp("mixed") / "warehouse.duckdb"
    return generate(path, institutions=4, courses=60_000, schools=40, views=300_000, enrollments=60_000)


@pytest.mark.slow
@pytest.mark.parametrize(
    "consumers, render_workers, consumer_jobs, kill",
    [
        (3, 4, 2, "kill"),  # 3 consumers x 4 chunks in flight on 3 CPUs, a node removed mid-run
        (1, 0, 4, "keep"),  # the defaults: one consumer, one chunk per CPU (+1)
    ],
)
def test_forty_mixed_jobs_on_three_nodes(
    four_institutions, tmp_path, capsys, consumers, render_workers, consumer_jobs, kill
):
    result = run_script(
        "mixed_load_scenario.py",
        tmp_path,
        four_institutions,
        consumers,
        render_workers,
        consumer_jobs,
        kill,
        timeout=600,
    )
    show_timeline(
        capsys,
        f"{consumers} consumers, render_workers={render_workers}, {consumer_jobs} jobs each, {kill}",
        result["timeline"],
        f"render tasks by node: {result['render_tasks_by_node']}",
    )
    results, expected = result["results"], result["expected"]
    assert [r["status"] for r in results] == ["done"] * 40
    assert [(r["rows"], r["sha"]) for r in results] == [(e["rows"], e["sha"]) for e in expected]
    assert sorted(Counter(map(tuple, result["notes"])).values()) == [1] * 40 and len(result["notes"]) == 40
    assert min(e["rows"] for e in expected) < 5_000 < max(e["rows"] for e in expected)  # mixed sizes
    nodes = result["render_tasks_by_node"]
    assert {"head", "worker", "removed"} <= nodes.keys(), nodes  # work ran on every node
