"""A synthetic warehouse with the SPEC §4 schema, generated inside DuckDB.

Rows come from ``range()`` and a seeded ``hash()``, so the same seed gives the same file and a
million courses with twenty million views take seconds, not a Python loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb

SCHEMA = """
CREATE TABLE schools (id BIGINT, institution_id BIGINT, name VARCHAR);
CREATE TABLE courses (id BIGINT, institution_id BIGINT, title VARCHAR, status VARCHAR,
                      published_at TIMESTAMP, deleted_at TIMESTAMP);
CREATE TABLE course_schools (course_id BIGINT, school_id BIGINT);
CREATE TABLE course_views (course_id BIGINT, user_id BIGINT, viewed_at TIMESTAMP);
CREATE TABLE enrollments (course_id BIGINT, user_id BIGINT, enrolled_at TIMESTAMP,
                          completed_at TIMESTAMP);
"""

# Accented and mixed-case words so the report's accent- and case-insensitive ordering matters.
SCHOOL_WORDS = [
    "Escola Álvares",
    "Colégio Éden",
    "escola Zumbi",
    "Instituto Ômega",
    "Academia Ágora",
    "Centro Ítaca",
    "Escola Barão",
    "Faculdade Çedro",
    "escola aurora",
    "Liceu Úrsula",
]
TITLE_WORDS_A = [
    "Introdução a",
    "Fundamentos de",
    "Avançado em",
    "Oficina de",
    "Trilha de",
    "Workshop de",
    "Módulo de",
    "Curso de",
    "Prática de",
    "Ética em",
]
TITLE_WORDS_B = [
    "Python",
    "Gestão",
    "Liderança",
    "Excel",
    "Marketing",
    "Álgebra",
    "Ciência de Dados",
    "Comunicação",
    "Segurança",
    "Ônibus Espaciais",
    "Redação",
    "Física",
]

BATCH = 2_000_000
EPOCH = "TIMESTAMP '2025-01-01 00:00:00'"
SPAN_SECONDS = 2 * 365 * 86400  # activity spread over 2025-2026


def _h(seed: int, salt: int, expr: str = "i") -> str:
    """A deterministic pseudo-random non-negative BIGINT per row."""
    return f"(hash({expr}, {seed}, {salt}) >> 1)::BIGINT"


def generate(
    out: Path,
    *,
    institutions: int = 3,
    courses: int = 3000,
    schools: int = 30,
    views: int = 60_000,
    enrollments: int = 20_000,
    seed: int = 42,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Write the warehouse to ``out`` atomically (a temp file renamed into place)."""
    if min(institutions, courses, schools) < 1 or schools < institutions:
        raise ValueError("need at least one institution, course and school per institution")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    report = progress or (lambda *_: None)
    per_inst = schools // institutions
    con = duckdb.connect(str(tmp))
    try:
        con.execute(SCHEMA)
        report("schools", 0, schools)
        con.execute(
            f"""INSERT INTO schools SELECT i, 1 + (i - 1) % {institutions},
                {SCHOOL_WORDS}[1 + {_h(seed, 1)} % {len(SCHOOL_WORDS)}] || ' ' || i
                FROM range(1, {schools + 1}) t(i)"""
        )
        report("schools", schools, schools)
        for table, total, sql in (
            ("courses", courses, _courses_sql(institutions, seed)),
            ("course_schools", courses, _links_sql(institutions, per_inst, seed)),
            ("course_views", views, _views_sql(courses, seed)),
            ("enrollments", enrollments, _enrollments_sql(courses, seed)),
        ):
            for lo in range(1, total + 1, BATCH):
                hi = min(total + 1, lo + BATCH)
                report(table, lo - 1, total)
                con.execute(sql.format(lo=lo, hi=hi))
            report(table, total, total)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, out)
    return out


def _courses_sql(institutions: int, seed: int) -> str:
    published = f"({_h(seed, 2)} % 100) < 80"
    return f"""INSERT INTO courses SELECT i, 1 + (i - 1) % {institutions},
        {TITLE_WORDS_A}[1 + {_h(seed, 3)} % {len(TITLE_WORDS_A)}] || ' ' ||
        {TITLE_WORDS_B}[1 + {_h(seed, 4)} % {len(TITLE_WORDS_B)}] || ' ' || (1 + {_h(seed, 5)} % 500),
        CASE WHEN {published} THEN 'published' ELSE 'draft' END,
        CASE WHEN {published} THEN TIMESTAMP '2024-01-01' + to_seconds(({_h(seed, 6)} % 86400000)::BIGINT) END,
        CASE WHEN ({_h(seed, 7)} % 100) < 3 THEN TIMESTAMP '2026-01-01' END
        FROM range({{lo}}, {{hi}}) t(i)"""


def _links_sql(institutions: int, per_inst: int, seed: int) -> str:
    # 0, 1 or 2 schools per course (about a third have none), always of the course's institution.
    return f"""INSERT INTO course_schools SELECT DISTINCT i,
        ({_h(seed, 10, "i, k")} % {per_inst}) * {institutions} + 1 + (i - 1) % {institutions}
        FROM range({{lo}}, {{hi}}) t(i), range(0, 2) r(k)
        WHERE k < {_h(seed, 11)} % 3"""


def _views_sql(courses: int, seed: int) -> str:
    return f"""INSERT INTO course_views SELECT 1 + {_h(seed, 20)} % {courses}, {_h(seed, 21)} % 100000,
        {EPOCH} + to_seconds(({_h(seed, 22)} % {SPAN_SECONDS})::BIGINT)
        FROM range({{lo}}, {{hi}}) t(i)"""


def _enrollments_sql(courses: int, seed: int) -> str:
    enrolled = f"{EPOCH} + to_seconds(({_h(seed, 32)} % {SPAN_SECONDS})::BIGINT)"
    return f"""INSERT INTO enrollments SELECT 1 + {_h(seed, 30)} % {courses}, {_h(seed, 31)} % 100000,
        {enrolled},
        CASE WHEN ({_h(seed, 33)} % 100) < 40
             THEN {enrolled} + to_seconds(({_h(seed, 34)} % (90 * 86400))::BIGINT) END
        FROM range({{lo}}, {{hi}}) t(i)"""
