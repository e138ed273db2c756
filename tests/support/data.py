"""Small hand-made warehouses with every edge case SPEC §5 names, and the report each must yield,
computed here from the raw rows with plain Python (independently of ``actors.report.catalog``); and the
rows of a sheet-overflowing table, for the reader matrix."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import duckdb

from actors.warehouse.demo import SCHEMA

LONG = "Å" * 20_000 + "b" * 20_000  # 60,000 UTF-8 bytes, cut at 32,767 characters
ASTRAL_LONG = "😀" * 20_000  # 40,000 UTF-16 units: cut to 16,383 emoji

SCHOOLS = [
    (10, 1, "Escola Álvares"),
    (11, 1, "escola zumbi"),
    (12, 1, "Colégio Éden"),
    (13, 1, "Escola Álvares"),  # same name as 10: listed once
    (14, 1, "ÁGORA"),
    (20, 2, "Outra Escola"),  # another institution's school
]

T = datetime
COURSES = [
    # id, institution, title, status, published_at, deleted_at
    (1, 1, "Álgebra Linear", "published", T(2025, 3, 1, 2, 30), None),
    (2, 1, "algebra básica", "draft", None, None),
    (3, 1, "=SUM(1)", "published", T(2025, 12, 31, 23, 59, 59), None),
    (4, 1, "<b>negrito</b> & \"aspas\" 'simples'", "published", T(2024, 1, 1), None),
    (5, 1, "sino\x07 e\x0b tab\tfim", "published", T(2025, 6, 15, 12), None),
    (6, 1, LONG, "draft", None, None),
    (7, 1, "_x0041_ literal", "published", T(2025, 1, 1), None),
    (8, 1, "  espaços  ", "published", T(2025, 1, 2), None),
    (9, 1, "linha1\r\nlinha2", "draft", None, None),
    (10, 1, None, "draft", None, None),
    (11, 1, "Removido", "published", T(2025, 1, 1), T(2025, 2, 1)),  # deleted: never listed
    (12, 1, "😀 Ótimo", "published", T(2025, 2, 2), None),
    (13, 1, ASTRAL_LONG, "draft", None, None),
    (14, 1, "Zebra", "weird-status", None, None),
    (15, 1, "", "draft", None, None),
    (16, 1, "Straße", "published", T(2025, 5, 5), None),
    (17, 1, "strasse", "published", T(2025, 5, 6), None),
    (100, 2, "Curso de outra instituição", "published", T(2025, 1, 1), None),
]

COURSE_SCHOOLS = [
    (1, 10),
    (1, 11),
    (1, 13),
    (1, 13),  # duplicate link, duplicate name
    (2, 10),
    (3, 12),
    (4, 12),
    (5, 14),
    (6, 14),
    (7, 11),
    (8, 20),  # only another institution's school: Escola stays empty
    (12, 10),
    (12, 20),
    (13, 11),
    (16, 12),
    (17, 12),
    (100, 20),
]

P_START, P_END = date(2025, 1, 1), date(2025, 12, 31)
VIEWS = [
    (1, 1, T(2025, 1, 1, 0, 0)),  # first instant: counted
    (1, 2, T(2025, 12, 31, 23, 59, 59, 999999)),  # last instant: counted
    (1, 3, T(2026, 1, 1, 0, 0)),  # end + 1 day: not counted
    (1, 4, T(2024, 12, 31, 23, 59, 59)),  # before: not counted
    (2, 1, T(2025, 6, 1)),
    (2, 1, T(2025, 6, 2)),
    (3, 9, T(2025, 1, 1, 1)),
    (11, 1, T(2025, 6, 1)),  # deleted course
    (100, 1, T(2025, 6, 1)),  # other institution
]
ENROLLMENTS = [
    (1, 1, T(2025, 1, 1), T(2025, 2, 1)),
    (1, 2, T(2024, 12, 1), T(2025, 1, 15)),  # enrolled before, completed inside
    (1, 3, T(2025, 12, 20), T(2026, 1, 2)),  # enrolled inside, completed after
    (2, 1, T(2025, 3, 3), None),
    (3, 2, T(2026, 1, 1), None),  # outside
]

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


class Warehouse(NamedTuple):
    """The raw rows of the five SPEC §4 tables."""

    schools: list[tuple]
    courses: list[tuple]
    course_schools: list[tuple]
    views: list[tuple]
    enrollments: list[tuple]


CRAFTED = Warehouse(SCHOOLS, COURSES, COURSE_SCHOOLS, VIEWS, ENROLLMENTS)

# The reader matrix's file: every kind of text and date a spreadsheet reader can get wrong.
EDGE = Warehouse(
    schools=[
        (1, 1, "Escola Álvares"),
        (2, 1, "مدرسة النور"),  # Arabic (RTL)
        (3, 1, "בית ספר אור"),  # Hebrew (RTL)
        (4, 1, "東京学園 서울"),  # CJK
        (5, 1, "🏫 Escola Estrela ✨"),  # astral emoji
        (6, 1, "=Escola+1"),  # formula-looking
        (7, 1, "_x0041_ Escola"),  # an escape pattern in a school name
        (8, 1, "Ñandú\x01 Colégio"),  # a control character, dropped
        (9, 2, "Outra instituição"),  # another institution's school: never shown
    ],
    courses=[
        # id, institution, title, status, published_at, deleted_at
        (1, 1, "Ação, Ñandú & Crème brûlée", "published", T(2025, 3, 1, 2, 30), None),
        (2, 1, "🎓 Formatura 👩🏽‍💻 ok", "published", T(2024, 2, 29, 23, 59, 59), None),
        (3, 1, "مقدمة في البرمجة", "published", T(1900, 1, 1), None),
        (4, 1, "מבוא לתכנות", "published", T(1900, 1, 15, 12), None),
        (5, 1, "数据科学入门", "published", T(1900, 2, 28), None),
        (6, 1, "日本語の講座 한국어", "published", T(1900, 3, 1), None),
        (7, 1, "=SUM(1)", "published", T(1800, 1, 1), None),
        (8, 1, "+1", "published", T(1899, 12, 31, 23), None),
        (9, 1, "-1", "draft", None, None),
        (10, 1, "@x", "published", T(2099, 12, 31), None),
        (11, 1, "_x0041_", "published", T(2025, 1, 1), None),
        (12, 1, "_X0042_", "draft", None, None),
        (13, 1, "a_x000D_b", "published", T(2026, 6, 2), None),
        (14, 1, "_x0041_x0042_", "draft", None, None),
        (15, 1, "x_x00e9_y _x005F_ _x12G4_", "draft", None, None),  # lowercase hex, the escape itself, no hex
        (16, 1, "sino\x07 e\x0b\x1b fim\ufffe\uffff.", "published", T(2025, 6, 15), None),
        (17, 1, "linha1\r\nlinha2\ttab\rCR só\n", "draft", None, None),
        (18, 1, LONG, "draft", None, None),
        (19, 1, ASTRAL_LONG, "draft", None, None),
        (20, 1, "", "draft", None, None),
        (21, 1, None, "published", T(2025, 5, 5), None),
        (22, 1, "Sem escola", "published", T(2025, 5, 6), None),
        (23, 1, "Várias escolas", "weird-status", T(2025, 5, 7), None),
        (24, 1, "  espaços  ", "published", T(2025, 1, 2), None),
        (25, 1, "Removido", "published", T(2025, 1, 1), T(2025, 2, 1)),  # deleted: never listed
        (123456789, 1, "Identificador longo", "published", T(2025, 1, 3), None),  # 9 digits: shown whole
        (100, 2, "Curso de outra instituição", "published", T(2025, 1, 1), None),
    ],
    course_schools=[
        (1, 1),
        (2, 5),
        (3, 2),
        (4, 3),
        (5, 4),
        (6, 4),
        (7, 6),
        (8, 6),
        (9, 1),
        (10, 7),
        (11, 7),
        (12, 7),
        (13, 1),
        (14, 8),
        (15, 8),
        (16, 1),
        (17, 2),
        (18, 3),
        (19, 5),
        (20, 1),
        (21, 1),
        (23, 1),
        (23, 2),
        (23, 3),
        (23, 4),
        (23, 5),
        (23, 6),
        (23, 7),
        (23, 8),
        (23, 9),  # every school
        (24, 9),  # only another institution's school: Escola stays empty
        (123456789, 4),
        (100, 9),
    ],
    views=[
        (1, 1, T(2025, 1, 1)),
        (1, 2, T(2025, 12, 31, 23)),
        (3, 1, T(2025, 6, 1)),
        (23, 4, T(2025, 7, 1)),
        (1, 3, T(2026, 1, 1)),
    ],  # the last one outside the period
    enrollments=[
        (1, 1, T(2025, 1, 1), T(2025, 2, 1)),
        (4, 2, T(2025, 3, 3), None),
        (23, 3, T(2024, 12, 1), T(2025, 1, 15)),
    ],
)


def write_warehouse(path: Path, data: Warehouse = CRAFTED) -> Path:
    con = duckdb.connect(str(path))
    con.execute(SCHEMA)
    con.executemany("INSERT INTO schools VALUES (?, ?, ?)", data.schools)
    con.executemany("INSERT INTO courses VALUES (?, ?, ?, ?, ?, ?)", data.courses)
    con.executemany("INSERT INTO course_schools VALUES (?, ?)", data.course_schools)
    con.executemany("INSERT INTO course_views VALUES (?, ?, ?)", data.views)
    con.executemany("INSERT INTO enrollments VALUES (?, ?, ?, ?)", data.enrollments)
    con.close()
    return path


def key(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).casefold()


def cell_text(s: str | None) -> str | None:
    """What a reader must give back for a text: XML-forbidden characters dropped, at most
    32,767 UTF-16 units, empty as no value."""
    if s is None:
        return None
    s = "".join(
        c for c in s if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000
    )
    s = s.encode("utf-16-le")[: 2 * 32767].decode("utf-16-le", errors="ignore")
    return s or None


def shown_date(d: date | None) -> date | str | None:
    """What a reader must give back for a date: the date, or before 1900 (which Excel's date
    system cannot hold) the text DD/MM/YYYY."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}" if d is not None and d.year < 1900 else d


def expected_report(
    institution_id: int,
    start: date,
    end: date,
    *,
    subdomain: str,
    student: str,
    admin: str,
    school_ids=None,
    tz: str = "UTC",
    data: Warehouse = CRAFTED,
    text=cell_text,
    day=shown_date,
) -> list[list]:
    """The report's rows as a reader of the .xlsx must see them; ``text`` and ``day`` say how a
    text and a date come back (other formats keep them as the warehouse has them)."""
    zone = ZoneInfo(tz)

    def utc(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    lo, hi = utc(start), utc(end + timedelta(days=1))
    school = {sid: (inst, name) for sid, inst, name in data.schools}
    rows = []
    for cid, inst, title, status, published, deleted in data.courses:
        if inst != institution_id or deleted is not None:
            continue
        links = {sid for c, sid in data.course_schools if c == cid}
        if school_ids is not None and not any(
            sid in school_ids and school.get(sid, (None,))[0] == institution_id for sid in links
        ):
            continue
        names = sorted({school[s][1] for s in links if school[s][0] == institution_id}, key=lambda n: (key(n), n))
        pub = None
        if published is not None:
            pub = published.replace(tzinfo=UTC).astimezone(zone).date()
        rows.append(
            [
                cid,
                text(title),
                student.format(subdomain=subdomain, course_id=cid),
                "Publicado" if status == "published" else "Rascunho",
                admin.format(subdomain=subdomain, course_id=cid),
                sum(1 for c, _, at in data.views if c == cid and lo <= at < hi),
                sum(1 for c, _, at, _ in data.enrollments if c == cid and lo <= at < hi),
                sum(1 for c, _, _, done in data.enrollments if c == cid and done is not None and lo <= done < hi),
                day(pub),
                text(", ".join(names)) if names else None,
            ]
        )
    rows.sort(key=lambda r: (r[9] is None, key(r[9] or ""), key(title_of(r[0], data) or ""), r[0]))
    return rows


def title_of(course_id: int, data: Warehouse = CRAFTED) -> str | None:
    return next(c[2] for c in data.courses if c[0] == course_id)


# A table past one sheet's rows, in report order: six school groups, then courses with none.
BIG_SCHOOLS = [
    "Academia Ágora",
    "Colégio Éden",
    "Escola Álvares",
    "Instituto Ômega",
    "Liceu Úrsula",
    "escola Zumbi",
]  # already in key() order
BIG_WORDS = ["Álgebra", "Ética", "Física", "Ônibus", "Çedilha", "Über", "Ñandú"]
BIG_STUDENT, BIG_ADMIN = "https://demo.lxp.test/course/{}", "https://demo.lxp.test/admin/courses/{}/edit"
BIG_FIRST_DATE, BIG_DATE_SPAN, BIG_DATE_STEP = date(1900, 3, 1), 73_000, 7_919  # 1900-03-01 to 2099


def big_school(i: int, n: int) -> str | None:
    group = i * (len(BIG_SCHOOLS) + 1) // n
    return BIG_SCHOOLS[group] if group < len(BIG_SCHOOLS) else None


def big_rows(n: int) -> Iterator[list]:
    """The ``n`` data rows a reader must see for the big table, one at a time (row ``i`` is
    course ``i + 1``; the reader matrix builds the same table with Arrow)."""
    first = BIG_FIRST_DATE.toordinal()
    for i in range(n):
        cid = i + 1
        yield [
            cid,
            f"Curso {cid:07d} — {BIG_WORDS[i % len(BIG_WORDS)]}",
            BIG_STUDENT.format(cid),
            "Publicado" if i % 3 else "Rascunho",
            BIG_ADMIN.format(cid),
            i % 1000,
            i % 97,
            i % 13,
            None if i % 5 == 0 else date.fromordinal(first + i * BIG_DATE_STEP % BIG_DATE_SPAN),
            big_school(i, n),
        ]


SHEET_DATA_ROWS = 1_048_575  # SPEC §5: data rows per sheet, each sheet's header row aside


def big_sheets(n: int) -> dict[str, Iterator[list]]:
    """The sheets a reader must see for the big table, header rows included; lazy, so consume
    them in order."""
    rows = big_rows(n)
    names = ["Catálogo"] + [f"Catálogo ({k})" for k in range(2, -(-n // SHEET_DATA_ROWS) + 1)]
    return {name: itertools.chain([HEADERS], itertools.islice(rows, SHEET_DATA_ROWS)) for name in names}
