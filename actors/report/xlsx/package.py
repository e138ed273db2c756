"""Stitch deflated sheet parts and the small fixed parts into one .xlsx (a zip file).

Hand-written because no zip library accepts pre-compressed data: the sheet members are the
render tasks' deflate fragments laid end to end, CRC-32 combined, never re-compressed.
Timestamps are fixed so equal input gives equal bytes; ZIP64 records appear only when a size or
offset needs them (Excel dislikes gratuitous ZIP64 fields).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from actors.report.xlsx.deflate import FINAL_BLOCK, DeflatedPart, combine, deflate_part
from actors.report.xlsx.rows import column_letter
from actors.report.xlsx.sheet import MAIN_NS, REL_NS, quoted

_DOS_TIME, _DOS_DATE = 0, (1980 - 1980) << 9 | 1 << 5 | 1  # 1980-01-01 00:00, fixed for determinism
_U32 = 0xFFFFFFFF

_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def styles(date_format: str) -> str:
    """The workbook's styles: plain, bold (the header) and dates in ``date_format``."""
    return _STYLES.replace("dd/mm/yyyy", escape(date_format, {'"': "&quot;"}))


_STYLES = (
    _XML_DECL + f'<styleSheet xmlns="{MAIN_NS}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


@dataclass(frozen=True)
class Sheet:
    """One worksheet as the render tasks left it: name, rows written, ordered deflated parts."""

    name: str
    data_rows: int
    parts: list[DeflatedPart]


def _content_types(n: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, n + 1)
    )
    return (
        _XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>' + sheets + "</Types>"
    )


def _root_rels() -> str:
    return (
        _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
        f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )


def _workbook(sheets: list[Sheet], columns: int) -> str:
    entries = "".join(
        f'<sheet name="{escape(s.name, {chr(34): "&quot;"})}" sheetId="{i}" r:id="rId{i}"/>'
        for i, s in enumerate(sheets, 1)
    )
    last_col = column_letter(columns - 1)
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{quoted(s.name)}!$A$1:${last_col}${s.data_rows + 1}</definedName>"
        for i, s in enumerate(sheets)
    )
    return (
        _XML_DECL + f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        '<workbookPr/><bookViews><workbookView activeTab="0"/></bookViews>'
        f"<sheets>{entries}</sheets><definedNames>{names}</definedNames></workbook>"
    )


def _workbook_rels(n: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, n + 1)
    )
    return (
        _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">{rels}'
        f'<Relationship Id="rId{n + 1}" Type="{REL_NS}/styles" Target="styles.xml"/></Relationships>'
    )


class _ZipWriter:
    """Just enough of the zip format for deflated members with known CRC and sizes."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.entries: list[tuple[bytes, int, int, int, int]] = []

    def add(self, name: str, parts: list[DeflatedPart]) -> None:
        crc, size, csize = combine(parts)
        offset = self.fh.tell()
        big = size >= _U32 or csize >= _U32
        extra = struct.pack("<HHQQ", 1, 16, size, csize) if big else b""
        raw_name = name.encode()
        self.fh.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                45 if big else 20,
                0,
                8,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                _U32 if big else csize,
                _U32 if big else size,
                len(raw_name),
                len(extra),
            )
            + raw_name
            + extra
        )
        for part in parts:
            self.fh.write(part.data)
        self.fh.write(FINAL_BLOCK)
        self.entries.append((raw_name, crc, csize, size, offset))

    def close(self) -> None:
        cd_start = self.fh.tell()
        for raw_name, crc, csize, size, offset in self.entries:
            fields = [v for v in (size, csize, offset) if v >= _U32]
            extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
            self.fh.write(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    45 if fields else 20,
                    45 if fields else 20,
                    0,
                    8,
                    _DOS_TIME,
                    _DOS_DATE,
                    crc,
                    min(csize, _U32),
                    min(size, _U32),
                    len(raw_name),
                    len(extra),
                    0,
                    0,
                    0,
                    0,
                    min(offset, _U32),
                )
                + raw_name
                + extra
            )
        cd_end = self.fh.tell()
        count, cd_size = len(self.entries), cd_end - cd_start
        if cd_start >= _U32 or count >= 0xFFFF:
            self.fh.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_start))
            self.fh.write(struct.pack("<IIQI", 0x07064B50, 0, cd_end, 1))
        self.fh.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                min(count, 0xFFFF),
                min(count, 0xFFFF),
                min(cd_size, _U32),
                min(cd_start, _U32),
                0,
            )
        )


def write_xlsx(path: Path, sheets: list[Sheet], columns: int, date_format: str = "dd/mm/yyyy") -> int:
    """Write the workbook; returns the file size in bytes."""
    small = {
        "[Content_Types].xml": _content_types(len(sheets)),
        "_rels/.rels": _root_rels(),
        "xl/workbook.xml": _workbook(sheets, columns),
        "xl/_rels/workbook.xml.rels": _workbook_rels(len(sheets)),
        "xl/styles.xml": styles(date_format),
    }
    with open(path, "wb") as fh:
        z = _ZipWriter(fh)
        for name, text in small.items():
            z.add(name, [deflate_part(text.encode())])
        for i, sheet in enumerate(sheets, 1):
            z.add(f"xl/worksheets/sheet{i}.xml", sheet.parts)
        z.close()
        return fh.tell()
