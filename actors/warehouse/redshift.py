"""The production backend: the report query on Amazon Redshift, streamed into Arrow.

URL: ``redshift://user:password@host:port/database?option=value&…`` (port defaults to 5439;
percent-encode special characters in the password). Options:

``ssl``
    ``true`` (default) or ``false``. Redshift requires TLS; ``false`` is only for a local
    PostgreSQL stand-in (the tests).
``fetch_rows``
    Report rows per ``FETCH FORWARD`` round trip, default 50000, rounded down to whole packed rows
    (at least one). Bounds the driver's objects alive at once; the Arrow result is always whole.
``timeout``
    Seconds allowed for connecting and for each round trip; default none, because Redshift
    materializes a cursor's whole result on the leader node during the first FETCH.
``partitions``
    How many id-range partitions a big report is fetched in, each on its own session in its own
    Ray task (1–64). Default: the cluster's CPUs, at most :data:`MAX_PARTITIONS`, because every
    partition is one concurrent query and Redshift's WLM runs few at once (5 slots in the default
    manual queue; a partition beyond them waits in line and only adds a session).
``partition_min_rows``
    Reports with fewer courses are fetched in one piece on the consumer's session (default 50000).

The courses and their school links travel packed (:mod:`actors.warehouse.packed`): ``LISTAGG``
joins up to 91 courses or 1,560 links into one VARCHAR on the server and Arrow splits them here,
because the driver decodes a row at a time in Python (at 1,000,000 courses: ~8 s of a 13.6 s
fetch before, 8.5 s in all after, against the server's 5.9 s). A PostgreSQL standing in for
Redshift needs ``LISTAGG`` (``tests/support/pg_shim.py``'s ``REDSHIFT_FUNCTIONS``).

Rows arrive through ``DECLARE … NO SCROLL CURSOR`` / ``FETCH FORWARD n`` inside one read-only
transaction: the driver's ``fetchmany`` would buffer the entire result first, and a single
transaction gives a partition's courses and school links the same snapshot. Partitions are
separate transactions: each is consistent in itself and they do not overlap, but two partitions
may see the warehouse a few milliseconds apart (a course added meanwhile is listed or not, as if
the report had been asked a moment earlier or later).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
import redshift_connector

from actors.warehouse.base import (
    COURSES_SCHEMA,
    LINKS_SCHEMA,
    NAMES_SCHEMA,
    PARTITION_OPTIONS,
    RANGES_SCHEMA,
    CatalogQuery,
    CatalogRows,
    FetchInterrupted,
    IdRange,
    Interrupts,
    Partitioning,
    conform,
    id_ranges,
)
from actors.warehouse.packed import packed_sql, per_chunk, unpack

DEFAULT_PORT = 5439
DEFAULT_FETCH_ROWS = 50_000
MAX_PARTITIONS = 4  # default cap: within the default WLM queue's 5 slots, one left for others
# REPEATABLE READ gives PostgreSQL one snapshot for both queries; Redshift maps it to its default
# SERIALIZABLE.
_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# Failures that leave the session unusable (rather than a statement the server refused).
_WIRE_ERRORS = (redshift_connector.InterfaceError, redshift_connector.OperationalError, OSError)
_BOOLS = {"true": True, "false": False}


class _Cursor(NamedTuple):
    """One statement of a read: its server-side cursor's name, SQL and parameters, the Arrow
    schema of its rows, and whether they travel packed (the big results) or one by one."""

    name: str
    sql: str
    params: list
    schema: pa.Schema
    packed: bool = False


class WarehouseConnectionError(ConnectionError):
    """Redshift could not be reached, refused the login, or dropped the session; safe to retry."""


class RedshiftWarehouse:
    """Redshift sessions for the caller's threads: a session runs one statement at a time, so
    each fetch takes an idle session or opens one, and gives it back after (a consumer running
    several jobs at once fetches a small report beside a big one, not after it). A lost session
    is closed; the next fetch opens another."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, strict_parsing=True)) if parts.query else {}
        unknown = options.keys() - {"ssl", "fetch_rows", "timeout", *PARTITION_OPTIONS}
        if unknown:
            raise ValueError(f"unknown redshift URL options: {sorted(unknown)}")
        ssl = options.get("ssl", "true")
        if ssl not in _BOOLS:
            raise ValueError(f"ssl must be true or false, not {ssl!r}")
        self.url = url
        self.partitioning = Partitioning.from_options(options, cap=MAX_PARTITIONS)
        self._fetch_rows = int(options.get("fetch_rows", DEFAULT_FETCH_ROWS))
        if self._fetch_rows < 1:
            raise ValueError("fetch_rows must be at least 1")
        user, port, database = unquote(parts.username or ""), parts.port or DEFAULT_PORT, parts.path[1:]
        self._where = f"{user}@{parts.hostname}:{port}/{database}"  # for error messages: no password
        self._params = {
            "host": parts.hostname,
            "port": port,
            "database": database,
            "user": user,
            "password": unquote(parts.password or ""),
            "ssl": _BOOLS[ssl],
            "timeout": int(options["timeout"]) if "timeout" in options else None,
        }
        self._lock = threading.Lock()
        self._interrupts = Interrupts()
        self._running: dict[int, int] = {}  # thread → the server process of the session it reads on
        self._idle: list[redshift_connector.Connection] = [self._connect()]  # fail fast on bad config

    def fetch(self, query: CatalogQuery) -> CatalogRows:
        courses, links = self._read(
            _Cursor("catalog_courses", *query.courses_sql(), COURSES_SCHEMA, packed=True),
            _Cursor("catalog_links", *query.links_sql(), LINKS_SCHEMA, packed=True),
        )
        return CatalogRows(courses, links)

    def school_names(self, query: CatalogQuery) -> pa.Table:
        return self._read(_Cursor("catalog_names", *query.names_sql(), NAMES_SCHEMA))[0]

    def id_ranges(self, query: CatalogQuery, partitions: int) -> list[IdRange]:
        return id_ranges(self._read(_Cursor("catalog_ranges", *query.ranges_sql(partitions), RANGES_SCHEMA))[0])

    def _read(self, *cursors: _Cursor) -> list[pa.Table]:
        """Each cursor streamed in turn, in one read-only transaction; :meth:`interrupt` stops it."""
        self._interrupts.start()
        with self._lock:
            con = self._idle.pop() if self._idle else None
        con = con or self._connect()
        cur = con.cursor()
        cur.paramstyle = "qmark"  # the shared SQL's placeholders; the driver rewrites them to $n
        me = threading.get_ident()
        with self._lock:
            self._running[me] = _backend_pid(con)
        try:
            cur.execute(_BEGIN)
            tables = [self._stream(cur, spec) for spec in cursors]
            con.commit()
        except _WIRE_ERRORS as exc:
            self._close(con)
            raise WarehouseConnectionError(f"lost the Redshift session {self._where}: {exc}") from exc
        except Exception as exc:
            cur.close()
            self._rollback(con)  # the server refused a statement, or canceled it when told to: the session is fine
            if self._interrupts.interrupted():
                raise FetchInterrupted("the read was interrupted") from exc
            raise
        except BaseException:  # interrupted mid-message (a cancelled Ray task): the wire can no longer be trusted
            self._cancel_on_server(_backend_pid(con))  # or the server would run the statement to its end
            self._close(con)
            raise
        finally:
            with self._lock:
                self._running.pop(me, None)
        cur.close()  # before another thread may take the session
        self._give_back(con)
        return tables

    def interrupt(self, thread_id: int) -> None:
        """Flag the thread (it stops between FETCH blocks) and cancel the statement its session
        runs, from a session of our own (``pg_cancel_backend``, which Redshift has too)."""
        self._interrupts.set(thread_id)
        with self._lock:
            pid = self._running.get(thread_id)
        if pid is not None:
            self._cancel_on_server(pid)

    def _cancel_on_server(self, pid: int) -> None:
        try:
            con = self._connect()
        except WarehouseConnectionError:
            return  # the server is out of reach: its statement ends with the session
        try:
            cur = con.cursor()
            cur.paramstyle = "qmark"
            cur.execute("SELECT pg_cancel_backend(?)", [pid])
            cur.fetchall()
        except (redshift_connector.Error, OSError):
            pass
        finally:
            self._close(con)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for con in idle:
            self._close(con)

    def _give_back(self, con: redshift_connector.Connection) -> None:
        with self._lock:
            self._idle.append(con)

    def _connect(self) -> redshift_connector.Connection:
        try:
            con = redshift_connector.connect(application_name="catalog-report", **self._params)
        except (redshift_connector.Error, OSError) as exc:
            raise WarehouseConnectionError(f"cannot open a Redshift session {self._where}: {exc}") from exc
        con.autocommit = True  # stops the driver's implicit BEGIN: fetch opens its own transaction
        return con

    def _stream(self, cur: redshift_connector.Cursor, spec: _Cursor) -> pa.Table:
        """Declare ``spec.sql`` as server-side cursor ``spec.name`` and turn each FETCH block into
        Arrow; packed ones as :mod:`~actors.warehouse.packed` chunks of many rows each.

        The name must be unique per result shape: the driver caches each statement text with the
        row description of its first run, so one FETCH text shared by two cursors of different
        shapes would be bound with the wrong column count. Cursors run one after another because
        Redshift allows one open cursor per session."""
        name, sql, schema = spec.name, spec.sql, spec.schema
        block, convert = self._fetch_rows, _to_table
        if spec.packed:
            sql, block, convert = packed_sql(sql, schema), max(1, self._fetch_rows // per_chunk(schema)), unpack
        cur.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", spec.params)
        tables = []
        while rows := cur.execute(f"FETCH FORWARD {block} FROM {name}").fetchall():
            self._interrupts.check()  # between blocks: the server is idle, nothing of its to cancel
            tables.append(convert(rows, schema))
            if len(rows) < block:
                break  # a short block is the last one: skip the empty round trip
        cur.execute(f"CLOSE {name}")
        return conform(pa.concat_tables(tables) if tables else schema.empty_table(), schema)

    def _rollback(self, con: redshift_connector.Connection) -> None:
        try:
            con.rollback()
        except (redshift_connector.Error, OSError):
            self._close(con)
        else:
            self._give_back(con)

    @staticmethod
    def _close(con: redshift_connector.Connection) -> None:
        """Forget a session. Closing it also makes the server roll back and free the cursor."""
        try:
            con.close()
        except (redshift_connector.Error, OSError):
            pass  # already dead; nothing left to release on our side


def _backend_pid(con: redshift_connector.Connection) -> int:
    """The server process of a session, from the BackendKeyData message the server sent when the
    session opened (its process id, then the key of a protocol cancel request): no round trip."""
    return int.from_bytes(con._backend_key_data[:4], "big")


def _to_table(rows: Sequence[Sequence[object]], schema: pa.Schema) -> pa.Table:
    """Transpose one block of driver rows into typed Arrow columns (the driver only yields rows)."""
    columns = zip(*rows)
    return pa.table(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)], schema=schema
    )
