"""Parquet (SPEC §2a): one file, typed columns (integers int64, the date a date, texts strings),
zstd, the locale's headers as column names, rows in report order.

Each render task encodes its chunk as a small Parquet file of one row group, compressed on the
task's own core. The merge copies those row groups' bytes as they are and writes one footer
listing them all, each offset moved to where its bytes now lie: no page is decoded or
compressed twice. (pyarrow cannot append encoded row groups, so the footer, a Thrift struct, is
rewritten here field by field, keeping every field it does not move.)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from actors.report.catalog import REPORT_SCHEMA
from actors.report.formats.layout import Layout
from actors.report.formats.thrift_compact import I16, STRUCT, field, read_struct, write_struct
from actors.report.xlsx.rows import Column, Dates, Link

EXTENSION = "parquet"
CONTENT_TYPE = "application/vnd.apache.parquet"
COMPRESSION = "zstd"
SHEETS = False

MAGIC = b"PAR1"
# Field ids in parquet.thrift: FileMetaData, RowGroup, ColumnChunk, ColumnMetaData.
_NUM_ROWS, _ROW_GROUPS = 3, 4
_GROUP_COLUMNS, _GROUP_FILE_OFFSET, _GROUP_ORDINAL = 1, 5, 7
_CHUNK_OFFSETS, _CHUNK_META = (2, 4, 6), 3  # file offset, offset index, column index; the metadata
_META_OFFSETS = (9, 10, 11, 14)  # data, index and dictionary page; bloom filter


def cells(rows: pa.Table, columns: list[Column], headers: Sequence[str]) -> pa.Table:
    """The chunk's cells as typed columns named after the headers (URLs spelled out, the school
    text decoded from its dictionary)."""
    values = []
    for column in columns:
        if isinstance(column, Link):
            value = column.values(rows)
        else:
            value = rows[column.key if isinstance(column, Dates) else column]
        if pa.types.is_dictionary(value.type):
            value = value.cast(value.type.value_type)
        values.append(value)
    return pa.table(values, names=list(headers))


def render(rows: pa.Table, first_row: int, columns: list[Column], headers: Sequence[str]) -> pa.Buffer:
    """One chunk as a complete Parquet file of one row group."""
    sink = pa.BufferOutputStream()
    pq.write_table(cells(rows, columns, headers), sink, compression=COMPRESSION, row_group_size=max(1, rows.num_rows))
    return sink.getvalue()


def merge(out: Path, parts: list[pa.Buffer], layout: Layout) -> int:
    """The parts' row groups, in plan order, as one file; returns its size."""
    if not parts:  # no rows: the columns, typed, and no row group
        parts = [render(REPORT_SCHEMA.empty_table(), 1, layout.columns, layout.wording.headers)]
    groups, rows, base = [], 0, None
    with open(out, "wb") as f:
        f.write(MAGIC)
        at = len(MAGIC)
        for part in parts:
            data = memoryview(part).cast("B")  # bytes as 0..255 (a pyarrow buffer shows signed chars)
            (length,) = struct.unpack("<I", data[-8:-4])
            if data[:4] != MAGIC or data[-4:] != MAGIC:
                raise ValueError("a rendered part is not a Parquet file")
            meta = read_struct(data[-8 - length : -8])
            for group in field(meta, _ROW_GROUPS)[2][1]:
                _move(group, at - len(MAGIC))
                ordinal = field(group, _GROUP_ORDINAL)
                if ordinal is not None:
                    ordinal[2] = len(groups)
                groups.append(group)
            rows += field(meta, _NUM_ROWS)[2]
            base = base or meta
            body = data[len(MAGIC) : -8 - length]
            f.write(body)
            at += len(body)
        if len(groups) > 2**15 - 1:  # an ordinal is an i16: leave them out rather than wrap
            for group in groups:
                group[:] = [g for g in group if not (g[0] == _GROUP_ORDINAL and g[1] == I16)]
        field(base, _NUM_ROWS)[2] = rows
        field(base, _ROW_GROUPS)[2] = (STRUCT, groups)
        footer = write_struct(base)
        f.write(footer)
        f.write(struct.pack("<I", len(footer)))
        f.write(MAGIC)
    return at + len(footer) + 8


def _move(group: list, shift: int) -> None:
    """Every file offset in a row group's metadata, ``shift`` bytes further."""
    _shift(group, (_GROUP_FILE_OFFSET,), shift)
    for chunk in field(group, _GROUP_COLUMNS)[2][1]:
        _shift(chunk, _CHUNK_OFFSETS, shift)
        meta = field(chunk, _CHUNK_META)
        if meta is not None:
            _shift(meta[2], _META_OFFSETS, shift)


def _shift(fields: list, ids: tuple[int, ...], shift: int) -> None:
    for fid in ids:
        offset = field(fields, fid)
        if offset is not None and offset[2] > 0:  # 0: not written
            offset[2] += shift
