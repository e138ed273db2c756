"""CSV and Parquet files (SPEC §2a) produced by the pipeline from the crafted warehouse, read back
with Python's csv, pyarrow.parquet and DuckDB to exactly the report's values."""

from __future__ import annotations

import csv
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actors.report.formats import content_type, parquet
from actors.report.formats.csv import escape
from actors.report.formats.layout import Layout
from actors.report.formats.thrift_compact import read_struct, write_struct
from actors.report.options import ReportOptions
from actors.report.pipeline import produce_report
from actors.report.wording import WORDINGS
from actors.warehouse import CatalogQuery, open_warehouse
from tests.conftest import ADMIN, STUDENT
from tests.support.data import HEADERS, P_END, P_START, expected_report


def produce(
    tmp_path, settings, file_format, *, institution=1, chunk_rows=None, locale="pt-BR", name="report", sheet_rows=None
):
    wh = open_warehouse(settings.warehouse_url)
    query = CatalogQuery.for_dates(institution, P_START, P_END, settings.zone)
    options = (
        settings.report if chunk_rows is None else ReportOptions(**{**vars(settings.report), "chunk_rows": chunk_rows})
    )
    out = tmp_path / f"{name}.{file_format}"
    extra = {"sheet_rows": sheet_rows} if sheet_rows else {}
    produced = produce_report(
        wh, query, subdomain="demo", options=options, out=out, file_format=file_format, locale=locale, **extra
    )
    wh.close()
    return out, produced


def expected_raw(**kw):
    """The rows with texts and dates as the warehouse has them (no spreadsheet cell rules)."""
    return expected_report(
        1, P_START, P_END, subdomain="demo", student=STUDENT, admin=ADMIN, text=lambda t: t, day=lambda d: d, **kw
    )


def as_csv_field(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
    return value.isoformat() if isinstance(value, date) else str(value)


def test_csv_reads_back_to_the_reports_values(tmp_path, settings_factory):
    out, produced = produce(tmp_path, settings_factory(tmp_path), "csv", chunk_rows=4)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and produced.size == len(data)
    assert data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n")  # CRLF, never a bare LF
    with open(out, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADERS
    assert rows[1:] == [[as_csv_field(v) for v in row] for row in expected_raw()]
    assert produced.rows == len(rows) - 1


def test_csv_quotes_and_defuses_formulas():
    values = pa.array(["=SUM(1)", "+1", "-2", "@x", "\tt", "\rr", 'a "b"', "a,b", "l1\nl2", "plain", None, "ok=1"])
    assert escape(values).to_pylist() == [
        "'=SUM(1)",
        "'+1",
        "'-2",
        "'@x",
        "'\tt",
        '"\'\rr"',
        '"a ""b"""',
        '"a,b"',
        '"l1\nl2"',
        "plain",
        "",
        "ok=1",
    ]


def test_csv_bytes_do_not_depend_on_the_chunks_and_sheets_do_not_cut_them(tmp_path, settings_factory):
    """One file whatever the row count: a sheet's size (5 rows here) does not apply to CSV."""
    settings = settings_factory(tmp_path)
    small, _ = produce(tmp_path, settings, "csv", chunk_rows=2, name="small", sheet_rows=5)
    whole, _ = produce(tmp_path, settings, "csv", chunk_rows=10_000, name="whole")
    assert small.read_bytes() == whole.read_bytes()


def test_parquet_is_typed_and_reads_back_in_two_readers(tmp_path, settings_factory):
    out, produced = produce(tmp_path, settings_factory(tmp_path), "parquet", chunk_rows=3)
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_row_groups >= -(-produced.rows // 3)  # a row group per chunk of at most 3 rows
    assert all(
        parquet.metadata.row_group(g).column(c).compression == "ZSTD"
        for g in range(parquet.metadata.num_row_groups)
        for c in range(parquet.metadata.num_columns)
    )
    table = parquet.read()
    assert table.column_names == HEADERS
    assert [f.type for f in table.schema] == [pa.int64(), pa.string(), pa.string(), pa.string(), pa.string()] + [
        pa.int64()
    ] * 3 + [pa.date32(), pa.string()]
    expected = expected_raw()
    assert [list(r.values()) for r in table.to_pylist()] == expected
    with duckdb.connect() as con:
        assert [list(r) for r in con.execute("SELECT * FROM read_parquet(?)", [str(out)]).fetchall()] == expected


def test_parquet_row_groups_are_copied_not_encoded_again(tmp_path, settings_factory):
    """Merging moves the parts' bytes: each rendered part's pages lie in the file unchanged, and the
    file reads as the one a single part makes."""
    settings = settings_factory(tmp_path)
    small, _ = produce(tmp_path, settings, "parquet", chunk_rows=2, name="small")
    whole, _ = produce(tmp_path, settings, "parquet", chunk_rows=10_000, name="whole")
    assert pq.read_table(small).equals(pq.read_table(whole))
    assert pq.ParquetFile(small).metadata.num_row_groups > pq.ParquetFile(whole).metadata.num_row_groups == 1

    rows = pq.read_table(whole)
    columns = list(rows.column_names)  # already cells: each column by name
    halves = [rows.slice(0, 5), rows.slice(5)]
    parts = [parquet.render(h, 1, columns, columns) for h in halves]
    out = tmp_path / "merged.parquet"
    parquet.merge(out, parts, Layout([], columns, WORDINGS["pt-BR"], {}, 0))
    merged = out.read_bytes()
    for part in parts:
        data = part.to_pybytes()
        body = data[4 : -8 - int.from_bytes(data[-8:-4], "little")]
        assert body in merged  # the row group's pages, byte for byte
    assert pq.read_table(out).equals(rows)


def test_a_footer_survives_the_round_trip(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1, None, 3], "b": ["x", "y", None], "c": [True, False, None]}), path)
    data = path.read_bytes()
    length = int.from_bytes(data[-8:-4], "little")
    footer = data[-8 - length : -8]
    assert write_struct(read_struct(footer)) == footer


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_an_institution_without_courses_gets_the_header_only(tmp_path, settings_factory, file_format):
    out, produced = produce(tmp_path, settings_factory(tmp_path), file_format, institution=99)
    assert produced.rows == 0
    if file_format == "csv":
        assert out.read_bytes() == b"\xef\xbb\xbf" + ",".join(HEADERS).encode() + b"\r\n"
    else:
        table = pq.read_table(out)
        assert table.num_rows == 0 and table.column_names == HEADERS


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_the_locale_and_time_zone_give_exactly_the_reports_values(tmp_path, settings_factory, file_format):
    """English words and column names, and the period and dates of São Paulo (SPEC §2a)."""
    zone, wording = "America/Sao_Paulo", WORDINGS["en"]
    out, _ = produce(tmp_path, settings_factory(tmp_path, timezone=zone), file_format, locale="en")
    words = {"Publicado": wording.published, "Rascunho": wording.draft}
    expected = [[*r[:3], words[r[3]], *r[4:]] for r in expected_raw(tz=zone)]
    if file_format == "csv":
        with open(out, newline="", encoding="utf-8-sig") as f:
            header, *rows = csv.reader(f)
        expected = [[as_csv_field(v) for v in row] for row in expected]
    else:
        table = pq.read_table(out)
        header, rows = table.column_names, [list(r.values()) for r in table.to_pylist()]
    assert header == list(wording.headers) and rows == expected


def test_content_types_follow_the_extension():
    assert content_type("catalogo_2026-01-01_2026-01-31.csv") == "text/csv; charset=utf-8"
    assert content_type("catalog_2026-01-01_2026-01-31.parquet") == "application/vnd.apache.parquet"
    assert content_type("catalogo_2026-01-01_2026-01-31.xlsx").startswith("application/vnd.openxmlformats")
