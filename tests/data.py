"""A small hand-made warehouse with every edge case SPEC §5 names, and the report it must yield,
computed here from the raw rows with plain Python (independently of ``actors.catalog``)."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from actors.demo_data import SCHEMA

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
    (1, 10), (1, 11), (1, 13), (1, 13),  # duplicate link, duplicate name
    (2, 10),
    (3, 12), (4, 12), (5, 14), (6, 14), (7, 11),
    (8, 20),  # only another institution's school: Escola stays empty
    (12, 10), (12, 20), (13, 11), (16, 12), (17, 12),
    (100, 20),
]

P_START, P_END = date(2025, 1, 1), date(2025, 12, 31)
VIEWS = [
    (1, 1, T(2025, 1, 1, 0, 0)),  # first instant: counted
    (1, 2, T(2025, 12, 31, 23, 59, 59, 999999)),  # last instant: counted
    (1, 3, T(2026, 1, 1, 0, 0)),  # end + 1 day: not counted
    (1, 4, T(2024, 12, 31, 23, 59, 59)),  # before: not counted
    (2, 1, T(2025, 6, 1)), (2, 1, T(2025, 6, 2)), (3, 9, T(2025, 1, 1, 1)),
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

HEADERS = ["ID", "Título", "URL de Visualização (Aluno)", "Status", "URL de Edição (Admin)",
           "Visualizações", "Matrículas", "Conclusões", "Data de Publicação", "Escola"]


def write_warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(SCHEMA)
    con.executemany("INSERT INTO schools VALUES (?, ?, ?)", SCHOOLS)
    con.executemany("INSERT INTO courses VALUES (?, ?, ?, ?, ?, ?)", COURSES)
    con.executemany("INSERT INTO course_schools VALUES (?, ?)", COURSE_SCHOOLS)
    con.executemany("INSERT INTO course_views VALUES (?, ?, ?)", VIEWS)
    con.executemany("INSERT INTO enrollments VALUES (?, ?, ?, ?)", ENROLLMENTS)
    con.close()
    return path


def key(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).casefold()


def cell_text(s: str | None) -> str | None:
    """What a reader must give back for a text: XML-forbidden characters dropped, at most
    32,767 UTF-16 units, empty as no value."""
    if s is None:
        return None
    s = "".join(c for c in s if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD
                or ord(c) >= 0x10000)
    s = s.encode("utf-16-le")[: 2 * 32767].decode("utf-16-le", errors="ignore")
    return s or None


def shown_date(d: date | None) -> date | str | None:
    """What a reader must give back for a date: the date, or before 1900 (which Excel's date
    system cannot hold) the text DD/MM/YYYY."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}" if d is not None and d.year < 1900 else d


def expected_report(institution_id: int, start: date, end: date, *, subdomain: str,
                    student: str, admin: str, school_ids=None, tz: str = "UTC") -> list[list]:
    zone = ZoneInfo(tz)

    def utc(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)

    lo, hi = utc(start), utc(end + timedelta(days=1))
    school = {sid: (inst, name) for sid, inst, name in SCHOOLS}
    rows = []
    for cid, inst, title, status, published, deleted in COURSES:
        if inst != institution_id or deleted is not None:
            continue
        links = {sid for c, sid in COURSE_SCHOOLS if c == cid}
        if school_ids is not None and not any(
            sid in school_ids and school.get(sid, (None,))[0] == institution_id for sid in links
        ):
            continue
        names = sorted({school[s][1] for s in links if school[s][0] == institution_id}, key=lambda n: (key(n), n))
        pub = None
        if published is not None:
            pub = published.replace(tzinfo=timezone.utc).astimezone(zone).date()
        rows.append([
            cid,
            cell_text(title),
            student.format(subdomain=subdomain, course_id=cid),
            "Publicado" if status == "published" else "Rascunho",
            admin.format(subdomain=subdomain, course_id=cid),
            sum(1 for c, _, at in VIEWS if c == cid and lo <= at < hi),
            sum(1 for c, _, at, _ in ENROLLMENTS if c == cid and lo <= at < hi),
            sum(1 for c, _, _, done in ENROLLMENTS if c == cid and done is not None and lo <= done < hi),
            shown_date(pub),
            ", ".join(names) or None,
        ])
    rows.sort(key=lambda r: (r[9] is None, key(r[9] or ""), key(title_of(r[0]) or ""), r[0]))
    return rows


def title_of(course_id: int) -> str | None:
    return next(c[2] for c in COURSES if c[0] == course_id)
