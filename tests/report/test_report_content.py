"""The workbook's content and file rules (SPEC §5), checked against rows computed
independently in tests/support/data.py, read back with openpyxl and python-calamine."""

from __future__ import annotations

import zipfile
from datetime import date

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from actors.report.pipeline import produce_report
from actors.report.wording import WORDINGS
from actors.warehouse import CatalogQuery, open_warehouse
from tests.conftest import ADMIN, STUDENT
from tests.support.data import HEADERS, P_END, P_START, expected_report
from tests.support.workbook import read_both, read_openpyxl


def produce(tmp_path, settings, institution=1, start=P_START, end=P_END, school_ids=None, sheet_rows=None, **kw):
    wh = open_warehouse(settings.warehouse_url)
    query = CatalogQuery.for_dates(institution, start, end, settings.zone, school_ids)
    out = tmp_path / "report.xlsx"
    extra = {"sheet_rows": sheet_rows} if sheet_rows else {}
    produced = produce_report(wh, query, subdomain="demo", options=settings.report, out=out, **extra, **kw)
    wh.close()
    return out, produced


def pad(rows, width=10):
    return [r + [None] * (width - len(r)) for r in rows]


@pytest.mark.parametrize("school_ids", [None, [10], [12, 20, 999, 12], [20]])
def test_content_matches_independent_computation(tmp_path, settings_factory, school_ids):
    settings = settings_factory(tmp_path)
    out, produced = produce(tmp_path, settings, school_ids=school_ids)
    expected = expected_report(1, P_START, P_END, subdomain="demo", student=STUDENT, admin=ADMIN, school_ids=school_ids)
    sheets = read_both(out)
    assert list(sheets) == ["Catálogo"]
    rows = pad(sheets["Catálogo"])
    assert rows[0] == HEADERS
    assert rows[1:] == expected
    assert produced.rows == len(expected)


def test_period_in_another_time_zone(tmp_path, settings_factory):
    settings = settings_factory(tmp_path, timezone="America/Sao_Paulo")
    out, _ = produce(tmp_path, settings, start=date(2025, 1, 1), end=date(2025, 12, 31))
    expected = expected_report(
        1, date(2025, 1, 1), date(2025, 12, 31), subdomain="demo", student=STUDENT, admin=ADMIN, tz="America/Sao_Paulo"
    )
    assert pad(read_both(out)["Catálogo"])[1:] == expected
    # The first view (2025-01-01 00:00 UTC) is 2024-12-31 21:00 in São Paulo: outside the period.
    assert [r for r in expected if r[0] == 1][0][5] == 2


def test_no_activity_lists_courses_with_zeros(tmp_path, settings_factory):
    out, _ = produce(tmp_path, settings_factory(tmp_path), start=date(2030, 1, 1), end=date(2030, 1, 31))
    rows = pad(read_both(out)["Catálogo"])[1:]
    assert len(rows) == 16 and all(r[5:8] == [0, 0, 0] for r in rows)


def test_institution_without_courses_gets_header_only(tmp_path, settings_factory):
    out, produced = produce(tmp_path, settings_factory(tmp_path), institution=99)
    assert produced.rows == 0
    assert read_both(out) == {"Catálogo": [HEADERS]}


def test_rows_continue_on_numbered_sheets_with_headers(tmp_path, settings_factory):
    out, _ = produce(tmp_path, settings_factory(tmp_path), sheet_rows=5)
    expected = expected_report(1, P_START, P_END, subdomain="demo", student=STUDENT, admin=ADMIN)
    sheets = read_both(out)
    assert list(sheets) == ["Catálogo", "Catálogo (2)", "Catálogo (3)", "Catálogo (4)"]
    body = []
    for rows in sheets.values():
        assert rows[0] == HEADERS
        assert len(rows) - 1 <= 5
        body += pad(rows[1:])
    assert body == expected  # no row dropped, order kept across sheets


def test_file_rules(tmp_path, settings_factory):
    out, _ = produce(tmp_path, settings_factory(tmp_path))
    import openpyxl

    wb = openpyxl.load_workbook(out)
    ws = wb["Catálogo"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:J{ws.max_row}"
    assert all(c.font.b for c in ws[1])
    widths = {c: ws.column_dimensions[c].width for c in "ABCDEFGHIJ"}
    assert all(8 <= w <= 60 for w in widths.values())
    assert widths["B"] == 60 and widths["C"] > widths["A"]  # long titles capped, URLs wider than ids
    formula_like = [r for r in ws.iter_rows(min_row=2) if r[1].value == "=SUM(1)"][0][1]
    assert formula_like.data_type == "s"  # text, not a formula
    dated = [r for r in ws.iter_rows(min_row=2) if r[0].value == 1][0][8]
    assert dated.is_date and dated.number_format.lower() == "dd/mm/yyyy"
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        sheet = z.read("xl/worksheets/sheet1.xml")
        assert b"<f>" not in sheet and b"\x07" not in sheet


def test_long_text_is_cut_to_excel_limit(tmp_path, settings_factory):
    out, _ = produce(tmp_path, settings_factory(tmp_path))
    rows = {r[0]: r for r in read_openpyxl(out)["Catálogo"][1:]}
    assert len(rows[6][1]) == 32767  # 40,000 BMP characters → 32,767
    assert rows[13][1] == "😀" * 16383  # astral characters count twice, as Excel counts them


@given(
    names=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8), min_size=1, max_size=4
    )
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_a_school_text_key_is_its_names_keys_joined(names):
    """What lets school texts be ranked from their names' keys (actors.report.catalog.aggregate_schools):
    NFKD, dropping marks and case folding never reach across the ", " separator."""
    from actors.report.catalog import SCHOOL_SEPARATOR
    from actors.report.collation import collation_key

    assert collation_key(SCHOOL_SEPARATOR.join(names)) == SCHOOL_SEPARATOR.join(collation_key(n) for n in names)


@pytest.mark.parametrize("locale", ["en", "es"])
def test_a_locale_changes_the_words_and_the_date_format_not_the_rows(tmp_path, settings_factory, locale):
    """SPEC §2a's table: headers, status words, sheet name, date format; the same rows in the
    same order (the order never depends on the locale)."""
    import openpyxl

    wording = WORDINGS[locale]
    out, _ = produce(tmp_path, settings_factory(tmp_path), locale=locale)
    words = {"Publicado": wording.published, "Rascunho": wording.draft}
    expected = [[*r[:3], words[r[3]], *r[4:]] for r in expected_report(1, P_START, P_END, subdomain="demo",
                                                                       student=STUDENT, admin=ADMIN)]  # fmt: skip
    sheets = read_both(out)
    assert list(sheets) == [wording.sheet]
    rows = pad(sheets[wording.sheet])
    assert rows[0] == list(wording.headers) and rows[1:] == expected
    dated = [r for r in openpyxl.load_workbook(out)[wording.sheet].iter_rows(min_row=2) if r[0].value == 1][0][8]
    assert dated.is_date and dated.number_format.lower() == wording.date_format


def test_the_locales_are_the_specs():
    assert WORDINGS["en"].headers == (
        "ID", "Title", "Student View URL", "Status", "Admin Edit URL", "Views", "Enrollments", "Completions",
        "Publication Date", "School",
    )  # fmt: skip
    assert WORDINGS["es"].headers == (
        "ID", "Título", "URL de Visualización (Alumno)", "Estado", "URL de Edición (Admin)", "Visualizaciones",
        "Matrículas", "Finalizaciones", "Fecha de Publicación", "Escuela",
    )  # fmt: skip
    assert [(w.published, w.draft, w.sheet, w.file_prefix, w.date_format) for w in WORDINGS.values()] == [
        ("Publicado", "Rascunho", "Catálogo", "catalogo", "dd/mm/yyyy"),
        ("Published", "Draft", "Catalog", "catalog", "yyyy-mm-dd"),
        ("Publicado", "Borrador", "Catálogo", "catalogo", "dd/mm/yyyy"),
    ]
    assert HEADERS == list(WORDINGS["pt-BR"].headers)
