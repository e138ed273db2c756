"""Raw warehouse rows → the report table of SPEC §5 (pure Arrow, no I/O).

School names are aggregated here rather than in SQL (Redshift and PostgreSQL share no string
aggregate), and the accent- and case-insensitive ordering is computed once per distinct string.
"""

from __future__ import annotations

import unicodedata
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors.warehouse.base import CatalogRows

HEADERS = [
    "ID",
    "Título",
    "URL de Visualização (Aluno)",
    "Status",
    "URL de Edição (Admin)",
    "Visualizações",
    "Matrículas",
    "Conclusões",
    "Data de Publicação",
    "Escola",
]

REPORT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("title", pa.string()),
        ("student_url", pa.string()),
        ("status", pa.string()),
        ("admin_url", pa.string()),
        ("views", pa.int64()),
        ("enrollments", pa.int64()),
        ("completions", pa.int64()),
        ("published", pa.date32()),
        ("school", pa.string()),
    ]
)

SCHOOL_SEPARATOR = ", "


def collation_key(s: str) -> str:
    """SPEC §5 ``key(s)``: NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def collation_keys(values: pa.Array) -> pa.Array:
    """``collation_key`` over an Arrow string array; ASCII strings take a vectorised path
    (for them the key is just the lower case), the rest go through Python once per distinct value."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    ascii_mask = pc.fill_null(pc.string_is_ascii(values), True)
    keys = pc.utf8_lower(values)
    if pc.all(ascii_mask).as_py():
        return keys
    others = pc.unique(pc.filter(values, pc.invert(ascii_mask)))
    other_keys = pa.array([collation_key(s) for s in others.to_pylist()], pa.string())
    looked_up = pc.take(other_keys, pc.index_in(values, others))
    return pc.if_else(ascii_mask, keys, looked_up)


def aggregate_schools(pairs: pa.Table) -> pa.Table:
    """(course_id, school_name) pairs → one ``school`` string per course, names distinct and
    in collation order (ties broken by the name itself so the result is deterministic)."""
    pairs = pairs.filter(pc.is_valid(pairs["school_name"]))
    pairs = pairs.group_by(["course_id", "school_name"], use_threads=False).aggregate([])
    pairs = pairs.append_column("key", collation_keys(pairs["school_name"]))
    pairs = pairs.sort_by([("course_id", "ascending"), ("key", "ascending"), ("school_name", "ascending")])
    grouped = pairs.group_by("course_id", use_threads=False).aggregate([("school_name", "list")])
    joined = pc.binary_join(grouped["school_name_list"], SCHOOL_SEPARATOR)
    return pa.table({"course_id": grouped["course_id"], "school": joined})


def fill_template(template: str, subdomain: str, ids: pa.Array) -> pa.Array:
    """Fill ``{subdomain}`` once and ``{course_id}`` per row, without a Python loop over rows."""
    sentinel = "\x00"
    parts = template.format(subdomain=subdomain, course_id=sentinel).split(sentinel)
    id_text = pc.cast(ids, pa.string())
    pieces: list = [parts[0]]
    for part in parts[1:]:
        pieces += [id_text, part]
    if len(pieces) == 1:
        return pa.array(np.full(len(ids), parts[0], dtype=object), pa.string())
    return pc.binary_join_element_wise(*pieces, "")


def local_dates(ts: pa.Array, zone: ZoneInfo) -> pa.Array:
    """Naive-UTC timestamps → calendar dates in ``zone``."""
    if zone.key == "UTC":
        return pc.cast(ts, pa.date32())
    aware = pc.assume_timezone(ts, "UTC").cast(pa.timestamp("us", tz=zone.key))
    return pc.cast(pc.local_timestamp(aware), pa.date32())


def build_report(
    rows: CatalogRows, *, subdomain: str, student_template: str, admin_template: str, zone: ZoneInfo
) -> pa.Table:
    """The report table in SPEC §5 column and row order."""
    courses = rows.courses.combine_chunks()
    schools = aggregate_schools(rows.schools)
    courses = courses.join(schools, "id", "course_id", join_type="left outer", use_threads=False)
    courses = courses.combine_chunks()
    school = courses["school"]
    order = pc.sort_indices(
        pa.table(
            {
                "no_school": pc.fill_null(pc.equal(pc.utf8_length(school), 0), True),
                "school_key": collation_keys(school),
                "title_key": collation_keys(pc.fill_null(courses["title"], "")),
                "id": courses["id"],
            }
        ),
        sort_keys=[("no_school", "ascending"), ("school_key", "ascending"),
                   ("title_key", "ascending"), ("id", "ascending")],
    )
    courses = courses.take(order)
    ids = courses["id"].combine_chunks()
    status = pc.if_else(pc.equal(courses["status"], "published"), "Publicado", "Rascunho")
    return pa.table(
        [
            ids,
            courses["title"],
            fill_template(student_template, subdomain, ids),
            pc.fill_null(status, "Rascunho"),
            fill_template(admin_template, subdomain, ids),
            courses["views"],
            courses["enrollments"],
            courses["completions"],
            local_dates(courses["published_at"].combine_chunks(), zone),
            courses["school"],
        ],
        schema=REPORT_SCHEMA,
    )
