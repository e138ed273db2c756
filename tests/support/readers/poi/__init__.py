"""Apache POI as a reader in the test matrix: XSSFWorkbook (usermodel) and POI's streaming reader.

POI comes from Debian alone: ``libapache-poi-java`` 4.0.1 and its dependencies, plus the OOXML
schema classes that ``install.sh`` compiles from the package's own source (Debian ships them as a
stub jar that cannot open an .xlsx). ``setup()`` says why POI cannot run, if it cannot;
``read()`` gives what POI sees, normalised like the other readers (``tests.support.readers.sheets``);
``sheets()`` gives the same rows lazily, so a million-row sheet is never held in memory::

    from tests.support.readers import poi
    reason = poi.setup()                      # None, or why to skip
    book = poi.read(path, streaming=False)    # XSSFWorkbook
    for name, rows in poi.sheets(path, streaming=True).items():   # XSSFReader + SAX handler
        for row in rows: ...

The JVM's heap is the JVM's default (a quarter of the memory) unless ``POI_READER_XMX`` says
otherwise. The usermodel holds the whole sheet as XML beans (measured: 1.2 GB resident for
100,000 rows, the streaming reader 0.2 GB), so a test of the million-row file reads it with
``streaming=True`` and leaves XSSFWorkbook to the edge-case file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "Read.java"
INSTALL = HERE / "install.sh"
JAVA_DIR = Path("/usr/share/java")
# Debian's poi-ooxml-schemas jar is deliberately left out: it is the stub.
DEBIAN_JARS = (
    "poi-4.0.1.jar",
    "poi-ooxml-4.0.1.jar",
    "xmlbeans.jar",
    "commons-codec.jar",
    "commons-collections4.jar",
    "commons-compress.jar",
    "commons-math3.jar",
)
SCHEMAS_JAR = "ooxml-schemas-4.0.1-full.jar"

#: What the last read() noted: cells without a reference, cells reported twice (streaming).
notes: list[str] = []

_classpath: str | None = None


def cache_dir() -> Path:
    return Path(
        os.environ.get("POI_READER_CACHE") or Path.home() / ".cache" / "catalog-report" / "poi"
    )


def setup() -> str | None:
    """Compiles Read.java (once per version of it); returns why POI cannot run, or None."""
    global _classpath
    if _classpath is not None:
        return None
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            return f"Apache POI: no {tool} (Debian openjdk-17-jdk-headless); run {INSTALL}"
    jars = [JAVA_DIR / name for name in DEBIAN_JARS]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        return f"Apache POI: {', '.join(missing)} missing (Debian libapache-poi-java); run {INSTALL}"
    schemas = cache_dir() / SCHEMAS_JAR
    if not schemas.is_file():
        return f"Apache POI: {schemas} missing (the compiled OOXML schemas); run {INSTALL}"
    libs = [str(j) for j in jars] + [str(schemas)]
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    classes = cache_dir() / f"read-{digest}"
    if not (classes / "Read.class").is_file():
        tmp = cache_dir() / f"read-{digest}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        done = subprocess.run(
            ["javac", "-nowarn", "-encoding", "UTF-8", "-cp", os.pathsep.join(libs),
             "-d", str(tmp), str(SOURCE)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return f"Apache POI: javac Read.java failed:\n{done.stderr[-3000:]}"
        try:
            tmp.rename(classes)
        except OSError:  # another process compiled it first
            shutil.rmtree(tmp, ignore_errors=True)
    _classpath = os.pathsep.join([str(classes), *libs])
    return None


def _cell(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return {"other": value}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        if "date" in value:
            return datetime.date.fromisoformat(value["date"])
        if "datetime" in value:
            return datetime.datetime.fromisoformat(value["datetime"])
    return value  # {"other": ...}: left as it is, so it never equals an expected value


class _Run:
    """One JVM reading one file; its output is consumed sheet by sheet, in order."""

    def __init__(self, path: str | os.PathLike, streaming: bool):
        reason = setup()
        if reason is not None:
            raise RuntimeError(reason)
        self.path = os.fspath(path)
        self.mode = "streaming" if streaming else "usermodel"
        cmd = ["java", "-XX:+UseSerialGC", "-Xss4m"]
        if os.environ.get("POI_READER_XMX"):
            cmd.append(f"-Xmx{os.environ['POI_READER_XMX']}")
        cmd += ["-cp", _classpath, "Read", self.mode, self.path]
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.err, env={**os.environ, "TZ": "UTC"}
        )
        self.current: str | None = None  # the sheet whose rows come next
        self.done = False
        notes.clear()
        first = self._next()
        if not (isinstance(first, dict) and "sheets" in first):
            self._fail(f"expected the sheet names first, got {first!r}")
        self.names: list[str] = first["sheets"]

    def _next(self):
        """The next JSON item, None at the end; notes are collected on the way."""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self._finish()
                return None
            item = json.loads(line)
            if isinstance(item, dict) and "note" in item:
                notes.append(f"{self.current}: {item['note']}")
                continue
            return item

    def _finish(self):
        if self.done:
            return
        self.done = True
        self.proc.stdout.close()
        code = self.proc.wait()
        self.err.seek(0)
        stderr = self.err.read().decode("utf-8", "replace")
        self.err.close()
        if code != 0:
            raise RuntimeError(f"Apache POI ({self.mode}) failed on {self.path}:\n{stderr[-4000:]}")

    def _fail(self, message: str):
        self.close()
        raise RuntimeError(f"Apache POI ({self.mode}) on {self.path}: {message}")

    def close(self):
        if not self.done:
            self.done = True
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.err.close()

    def rows(self, name: str) -> Iterator[list]:
        """Sheet ``name``'s rows; sheets before it that nobody read are skipped."""
        if self.current != name:
            while True:
                item = None if self.done else self._next()
                if item is None:
                    self._fail(f"sheet {name!r} never came (read the sheets in workbook order)")
                if isinstance(item, dict) and "sheet" in item and item["sheet"] == name:
                    break
            self.current = name
        return self._sheet_rows(name)

    def _sheet_rows(self, name: str) -> Iterator[list]:
        yielded = 0  # sheet rows handed out so far
        empties = 0  # empty rows seen but held back: only rows before a non-empty one count
        while True:
            item = None if self.done else self._next()
            if item is None or isinstance(item, dict):
                if isinstance(item, dict) and "sheet" in item:
                    self.current = item["sheet"]
                elif isinstance(item, dict):
                    self._fail(f"unexpected {item!r}")
                return
            number, cells = item
            if number <= yielded + empties:
                self._fail(f"row {number} of {name!r} came out of order")
            if not cells:
                empties = number - yielded
                continue
            while yielded < number - 1:
                yield []
                yielded += 1
            empties = 0
            yield [_cell(c) for c in cells]
            yielded += 1


class Book(dict):
    """Sheet name → a lazy iterator of its rows; ``close()`` ends the JVM early."""

    def __init__(self, run: _Run):
        super().__init__((name, _Lazy(run, name)) for name in run.names)
        self.run = run

    def close(self) -> None:
        self.run.close()


class _Lazy:
    """A sheet's rows, started on first use so that the mapping can be built up front."""

    def __init__(self, run: _Run, name: str):
        self.run, self.name, self.it = run, name, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.it is None:
            self.it = self.run.rows(self.name)
        return next(self.it)


def sheets(path: str | os.PathLike, streaming: bool) -> Book:
    """Sheet name → an iterator of its rows (see ``read``), to be consumed in workbook order.

    One JVM serves all the sheets; it ends when the last sheet has been read to its end, or on
    ``close()`` if a test stops early.
    """
    return Book(_Run(path, streaming))


def read(path: str | os.PathLike, streaming: bool) -> dict[str, list[list]]:
    """Sheet name → rows from row 1, each a list of cells from column A.

    A cell is None, int (an integral number), float, str, datetime.date (a number POI's DateUtil
    takes for a date), datetime.datetime (one with a time of day), or a dict ``{"other": ...}``
    for anything else (a formula, a boolean, an error). Trailing None cells and trailing empty
    rows are trimmed; rows POI does not report are empty lists. ``notes`` holds what POI's
    streaming handler did that a test should know (cells without a reference, and so on).
    ``streaming=False`` reads with XSSFWorkbook, ``True`` with XSSFReader + XSSFSheetXMLHandler.
    """
    book = sheets(path, streaming)
    try:
        return {name: list(rows) for name, rows in book.items()}
    finally:
        book.close()
