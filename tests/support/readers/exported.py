"""LibreOffice and Gnumeric, headless: each writes every sheet as a CSV file of the text it shows
in the cells, and ``displayed`` turns that text back into cells. Gnumeric can also write its raw
values, dates as their serial numbers: ~6x less CPU than formatting every cell as shown."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from tests.support.readers.sheets import Cell, Row, Sheets, trimmed

TIMEOUT_SECONDS = 1800
_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")

# Tokens: comma, '"', UTF-8, from line 1, no column types, default language, quote only where
# needed, detect special numbers, save cell contents as shown, no formulas, keep spaces, every
# sheet to its own file (LibreOffice names it "<file>-<sheet>.csv").
LIBREOFFICE_CSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
# Every field quoted: Gnumeric leaves a field with a lone CR unquoted otherwise.
GNUMERIC_CSV = "separator=, quoting-mode=always charset=UTF-8 eol=unix format="
EXCEL_DAY_ZERO = date(1899, 12, 30)  # serial 0 as a plain day count; Excel's own day 0 is one later


def displayed(text: str) -> Cell:
    """The cell behind ``text`` as both programs show SPEC §5's cells:

    - ``""``: an empty cell (SPEC §5 never writes an empty text);
    - digits without sign or leading zero: an integer (ids and counts, General format);
    - ``DD/MM/YYYY`` with a year from 1900: a date cell (the report's date format);
    - anything else, ``DD/MM/YYYY`` before 1900 included: text. Excel's 1900 date system has no
      date cell before 1900, which is why SPEC §5 writes those dates as this very text.

    A text cell reading like an integer or a date from 1900 on would come back as a number or a
    date; the matrix's files hold none, so on them the conversion is exact."""
    if text == "":
        return None
    if text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1):
        return int(text)
    if len(text) == 10 and (m := _DATE.fullmatch(text)) and int(m[3]) >= 1900:
        try:
            return date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:  # 29/02/1900, Excel's fictitious day: only text can hold it here
            return text
    return text


def _rows(path: Path) -> Iterator[Row]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for fields in csv.reader(fh):
                yield trimmed([displayed(f) for f in fields])
    finally:
        path.unlink(missing_ok=True)


def _run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


def read_libreoffice(path: Path) -> Sheets:
    out = Path(tempfile.mkdtemp(prefix=f"{path.stem}-libreoffice-", dir=path.parent))
    done = _run(
        [
            "soffice",
            f"-env:UserInstallation={(out / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            LIBREOFFICE_CSV,
            "--outdir",
            str(out),
            str(path),
        ]
    )
    # soffice reports each sheet it writes, in workbook order.
    written = re.findall(r"^Writing sheet (.*) -> (.*)$", done.stdout, re.MULTILINE)
    if not written:
        raise RuntimeError(f"soffice wrote no sheet: {done.stdout.strip()} {done.stderr.strip()}")
    return {name: _rows(Path(file)) for name, file in written}


def _gnumeric(path: Path, shown: bool) -> Sheets:
    out = Path(tempfile.mkdtemp(prefix=f"{path.stem}-gnumeric-", dir=path.parent))
    options = GNUMERIC_CSV + ("preserve" if shown else "raw")
    _run(
        [
            "ssconvert",
            "--export-type=Gnumeric_stf:stf_assistant",
            "-O",
            options,
            "-S",
            str(path),
            str(out / "%n.%s.csv"),
        ]
    )  # "<sheet index>.<sheet name>.csv"
    files = sorted(out.glob("*.csv"), key=lambda f: int(f.name.split(".", 1)[0]))
    return {f.name.split(".", 1)[1].removesuffix(".csv"): _rows(f) for f in files}


def read_gnumeric(path: Path) -> Sheets:
    """Gnumeric's cells as it shows them."""
    return _gnumeric(path, shown=True)


def read_gnumeric_values(path: Path) -> Sheets:
    """Gnumeric's cell values: a date cell gives its serial number (see ``as_serials``)."""
    return _gnumeric(path, shown=False)


def as_serials(row: Row) -> Row:
    """``row`` with its dates as Excel 1900-system serials (SPEC §5: 1900-01-01 is 1, the
    fictitious 1900-02-29 is 60, 1900-03-01 is 61)."""
    return [(c - EXCEL_DAY_ZERO).days - (c < date(1900, 3, 1)) if isinstance(c, date) else c for c in row]


def program_missing(program: str, package: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        return None if shutil.which(program) else f"{program} is not installed (Debian package {package})"

    return missing
