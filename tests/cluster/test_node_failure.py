"""A large job survives losing the node that renders part of it, and losing its consumer.

Each scenario runs a real three-node Ray cluster on this machine in a subprocess
(tests/support/node_failure_scenario.py) and must end with a correct file and exactly one notification.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.support.scenario import run_script, show_timeline
from tests.support.workbook import read_calamine


@pytest.fixture(scope="module")
def big_warehouse(tmp_path_factory) -> Path:
    from actors.warehouse.demo import generate

    path = tmp_path_factory.mktemp("big") / "warehouse.duckdb"
    return generate(path, institutions=1, courses=300_000, schools=40, views=1_500_000, enrollments=200_000)


def run_scenario(mode: str, warehouse: Path, tmp_path: Path, capsys) -> dict:
    data_dir = tmp_path / mode
    data_dir.mkdir()
    (data_dir / "warehouse.duckdb").symlink_to(warehouse)
    result = run_script("node_failure_scenario.py", mode, data_dir, timeout=420)
    show_timeline(capsys, f"{mode} timeline", result["timeline"])
    return result


def check(result: dict, warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    live = con.execute("SELECT count(*) FROM courses WHERE deleted_at IS NULL").fetchone()[0]
    con.close()
    assert result["status"] == "done" and result["rows"] == live
    assert [(n["jobId"], n["status"]) for n in result["notes"]] == [(result["job_id"], "done")]
    [path] = result["files"]
    rows = read_calamine(Path(path))["Catálogo"]
    assert len(rows) == live + 1 and sorted(r[0] for r in rows[1:]) == sorted(set(r[0] for r in rows[1:]))


@pytest.mark.slow
def test_losing_a_render_node_mid_job(big_warehouse, tmp_path, capsys):
    result = run_scenario("kill-render-node", big_warehouse, tmp_path, capsys)
    check(result, big_warehouse)
    # Chunks ran on both worker nodes; those lost with the killed one ran again on the other.
    assert result["render_tasks_by_node"].get("killed") and result["render_tasks_by_node"].get("survivor"), result


@pytest.mark.slow
def test_losing_the_consumer_mid_job(big_warehouse, tmp_path, capsys):
    result = run_scenario("kill-consumer", big_warehouse, tmp_path, capsys)
    check(result, big_warehouse)
    assert result["runs"] == 2  # the restarted consumer took the stale claim over and ran it again
