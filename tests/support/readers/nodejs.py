"""The Node readers (ExcelJS, normal and streaming, and SheetJS) through ``node/read.js``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from tests.support.readers.sheets import Cell, Row, Sheets, number, trimmed

NODE_DIR = Path(__file__).with_name("node")
TIMEOUT_SECONDS = 1800


def node_missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js (node) is not installed: apt-get install nodejs npm"
    if not (NODE_DIR / "node_modules" / "exceljs").is_dir() or not (NODE_DIR / "node_modules" / "xlsx").is_dir():
        return f"ExcelJS and SheetJS are not installed: npm ci --prefix {NODE_DIR}"
    return None


def _cell(value: object) -> Cell:
    if isinstance(value, dict):  # read.js marks dates, and values it has no plain form for
        return date.fromisoformat(value["date"]) if "date" in value else f"<not a plain value: {value}>"
    if isinstance(value, float):
        return number(value)
    return value  # type: ignore[return-value]  # None, int or str as JSON gives them


def _rows(path: Path) -> Iterator[Row]:
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                yield trimmed([_cell(v) for v in json.loads(line)])
    finally:
        path.unlink(missing_ok=True)


def read_with(engine: str) -> Callable[[Path], Sheets]:
    """A reader running ``read.js`` with ``engine`` (``exceljs``, ``exceljs-stream``, ``sheetjs``)."""

    def read(path: Path) -> Sheets:
        out = Path(tempfile.mkdtemp(prefix=f"{path.stem}-{engine}-", dir=path.parent))
        done = subprocess.run(
            ["node", str(NODE_DIR / "read.js"), engine, str(path), str(out)],
            env={**os.environ, "TZ": "UTC"},  # date cells become UTC midnights, read back in UTC
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
        if done.returncode:
            raise RuntimeError(f"{engine} failed: {done.stderr.strip().splitlines()[0]}")
        names = json.loads(done.stdout.splitlines()[-1])
        return {name: _rows(out / f"{i}.jsonl") for i, name in enumerate(names)}

    return read
