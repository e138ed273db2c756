"""SPEC §5's row order as computed by actors.report.catalog.order_report (integer codes, DuckDB's
string sort) against the plain-Python statement of it, on arbitrary Unicode titles and names."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from actors.report.catalog import SCHOOL_SEPARATOR, aggregate_schools, order_report
from actors.report.collation import collation_key, collation_keys

# Tricky code points beside arbitrary ones: ß, final sigma, ligatures, dotted I, Cherokee,
# combining marks, NUL, and letters whose keys tie with plain ASCII.
TRICKY = "aAbßsSΣσςﬁfiİıiIᏸᏰ\u0301\u0327eé\x00 ,Z"
text = st.text(st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8", exclude_categories=["Cs"])), max_size=6)


def reference(courses, links, names):
    """Rows as the SPEC says: courses with a school first, by their school text's key, then by
    the title's key, then by id; a course's text is its distinct names by (key, name), joined."""
    name_of = {i: n for i, n in names if n is not None}
    text = {}
    for course_id, school_id in links:
        if school_id in name_of:
            text.setdefault(course_id, set()).add(name_of[school_id])
    text = {c: SCHOOL_SEPARATOR.join(sorted(ns, key=lambda n: (collation_key(n), n))) for c, ns in text.items()}

    def row_key(course):
        course_id, title = course
        school = text.get(course_id)
        return (not school, collation_key(school or ""), collation_key(title or ""), course_id)

    return [(c, text.get(c)) for c, _ in sorted(courses, key=row_key)]


@given(
    titles=st.lists(st.one_of(st.none(), text), max_size=40),
    names=st.lists(st.one_of(st.none(), text), max_size=6),
    links=st.lists(st.tuples(st.integers(0, 45), st.integers(0, 7)), max_size=80),
    duplicated=st.booleans(),
)
@hypothesis_settings(max_examples=150, deadline=None)
def test_rows_are_in_the_specs_order(titles, names, links, duplicated):
    ids = list(range(len(titles)))
    if duplicated and titles:  # equal titles and equal school texts: only the id tells them apart
        titles = titles + titles
        ids = ids + [i + len(ids) for i in ids]
        links = links + [(c + len(titles) // 2, s) for c, s in links if c < len(titles) // 2]
    courses = list(zip(ids, titles))
    school_names = list(enumerate(names))
    keys = collation_keys(pa.array([t or "" for t in titles], pa.string()))
    ordering = order_report(
        np.array(ids, dtype=np.int64),
        keys,
        pa.table({"course_id": pa.array([c for c, _ in links], pa.int64()), "school_id": [s for _, s in links]}),
        pa.table({"id": pa.array([i for i, _ in school_names], pa.int64()), "name": pa.array(names, pa.string())}),
    )
    got = list(zip(np.array(ids)[ordering.order].tolist(), ordering.school.to_pylist()))
    assert got == reference(courses, links, school_names)


def test_equal_lists_of_names_share_one_text():
    """A million courses stand on a few texts: every course with the same schools gets the same code."""
    links = pa.table({"course_id": [1, 1, 2, 2, 3, 4, 4, 4], "school_id": [20, 10, 10, 20, 10, 10, 20, 20]})
    names = pa.table({"id": [10, 20], "name": ["Escola Á", "escola a"]})
    schools = aggregate_schools(links, names)
    assert schools.course_id.tolist() == [1, 2, 3, 4]
    texts = [schools.texts[c].as_py() for c in schools.code]
    assert texts == ["Escola Á, escola a"] * 2 + ["Escola Á"] + ["Escola Á, escola a"]  # equal keys: by name
    assert len(schools.texts) == 2
