"""Cutting the sorted report into render chunks (actors/report/partition.py); no Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from actors.report.partition import chunk_rows, group_boundaries, lay_out, plan_chunks, sheet_count


def schools(*runs: tuple[str | None, int]) -> pa.Array:
    return pa.array([name for name, n in runs for _ in range(n)], pa.string()).dictionary_encode()


def test_chunks_end_at_school_boundaries_when_one_fits():
    plan = plan_chunks(schools(("A", 3), ("B", 4), ("C", 2)), chunk_rows=5)
    assert [(c.offset, c.length) for c in plan] == [(0, 3), (3, 4), (7, 2)]
    assert [c.first_row for c in plan] == [2, 5, 9]  # row 1 is the header


def test_a_school_bigger_than_a_chunk_is_cut_at_the_chunk_size():
    plan = plan_chunks(schools(("A", 12)), chunk_rows=5)
    assert [(c.offset, c.length) for c in plan] == [(0, 5), (5, 5), (10, 2)]


def test_sheet_ends_are_always_cut_points():
    plan = plan_chunks(schools(("A", 7)), chunk_rows=5, sheet_rows=4)
    assert [(c.sheet, c.offset, c.length, c.first_row) for c in plan] == [(0, 0, 4, 2), (1, 4, 3, 2)]
    assert sheet_count(7, 4) == 2 and sheet_count(0, 4) == 1


def test_courses_without_a_school_are_one_group():
    assert group_boundaries(schools((None, 2), ("A", 1), (None, 1))).tolist() == [2, 3]
    assert plan_chunks(pa.array([], pa.string()), 5) == []


@given(
    st.lists(st.tuples(st.sampled_from(["A", "B", "C", None]), st.integers(1, 9)), max_size=12),
    st.integers(1, 20),
    st.integers(1, 30),
)
def test_chunks_cover_the_report_once_in_order(runs, size, sheet_rows):
    column = schools(*runs)
    plan = plan_chunks(column, size, sheet_rows)
    covered = [i for c in plan for i in range(c.offset, c.offset + c.length)]
    assert covered == list(range(len(column)))
    assert all(0 < c.length <= min(size, sheet_rows) for c in plan)
    assert all(c.offset // sheet_rows == c.sheet and (c.offset + c.length - 1) // sheet_rows == c.sheet for c in plan)


def test_a_chunks_rows_are_found_in_the_partitions_they_were_fetched_in():
    # Report row k is fetched row order[k]; partitions of 3 and 2 rows laid end to end.
    order, starts = np.array([4, 0, 3, 1, 2]), np.array([0, 3])
    school = schools(("A", 5))
    plan = plan_chunks(school, chunk_rows=5)
    rows = chunk_rows(plan[0], order, starts, school)
    assert rows.partitions == [0, 1]
    laid = np.concatenate([starts[p] + idx for p, idx in rows.picks])
    assert laid[rows.order].tolist() == order.tolist()


def test_partitions_here_are_laid_out_in_report_order_and_chunks_slice_them():
    # Report row k is fetched row order[k]; partitions of 3 and 2 rows fetched in this process.
    order, starts = np.array([4, 0, 3, 1, 2]), np.array([0, 3])
    fetched = [pa.table({"id": [10, 11, 12]}), pa.table({"id": [13, 14]})]
    school = schools(("A", 2), ("B", 3))
    plan = plan_chunks(school, chunk_rows=2)
    [report], rows = lay_out(fetched, order, school, plan, starts)
    assert report["id"].to_pylist() == [14, 10, 13, 11, 12]
    assert [r.picks for r in rows] == [[(0, slice(0, 2))], [(0, slice(2, 4))], [(0, slice(4, 5))]]
    assert [r.school.to_pylist() for r in rows] == [["A", "A"], ["B", "B"], ["B"]]
    assert all(r.school.offset == 0 for r in rows)  # shipped to a task without the whole column


def test_partitions_elsewhere_stay_there_and_chunks_pick_from_them():
    order, starts = np.array([4, 0, 3, 1, 2]), np.array([0, 3])
    elsewhere = [object(), object()]  # object refs of partitions in the object store
    school = schools(("A", 5))
    plan = plan_chunks(school, chunk_rows=5)
    partitions, [rows] = lay_out(elsewhere, order, school, plan, starts)
    assert partitions == elsewhere
    assert rows.partitions == [0, 1] and rows.order is not None
