"""The report's file formats (SPEC §2a), each a module with the same few names: a render task
turns a chunk of report rows into a part (``render``), the consumer joins the parts, in report
order, into one file (``merge``). Adding a format is one module and one line below."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from actors.report.formats import csv, parquet, xlsx
from actors.report.formats.layout import Layout
from actors.report.xlsx.rows import Column


class ReportFormat(Protocol):
    EXTENSION: str
    CONTENT_TYPE: str
    SHEETS: bool  # rows cut into sheets of SPEC §5's size (chunks never cross one); else one table

    def render(self, rows: pa.Table, first_row: int, columns: list[Column], headers: Sequence[str]) -> Any: ...

    def merge(self, out: Path, parts: list, layout: Layout) -> int: ...


FORMATS: dict[str, ReportFormat] = {"xlsx": xlsx, "csv": csv, "parquet": parquet}


def content_type(file_name: str) -> str:
    """The content type of a report file, from its extension."""
    extension = file_name.rsplit(".", 1)[-1]
    return next(f.CONTENT_TYPE for f in FORMATS.values() if f.EXTENSION == extension)
