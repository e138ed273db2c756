"""TEST-ONLY loopback proxy that lets the unmodified ``redshift-connector`` log in to stock PostgreSQL.

Why it exists: the driver sends Redshift-only startup parameters that PostgreSQL refuses
("unrecognized configuration parameter"), and it parses the ``server_version`` ParameterStatus
with ``packaging.version``, which rejects Debian's ``15.20 (Debian 15.20-0+deb12u1)``. The shim
rewrites exactly those two messages and passes every other byte through untouched, so the
queries, bind parameters and cursors the tests exercise are the driver's real wire traffic.

It also records what crosses the wire, so tests check the traffic rather than trust the code
under test: the SQL text of every Parse message (are values bound, not spliced?) and every
CommandComplete tag (``"FETCH 100"``, ``"CLOSE CURSOR"``, … — how many round trips?). TLS and
SCRAM are out of scope: connect with ``ssl=False`` to a trust/md5 server.
"""

from __future__ import annotations

import asyncio
import re
import struct
import threading
from collections.abc import Callable

# Startup parameters redshift-connector always sends and PostgreSQL rejects.
REDSHIFT_ONLY_PARAMS = frozenset(
    {b"client_protocol_version", b"driver_version", b"os_version", b"driver_discovery_version"}
)
_PLAIN_VERSION = re.compile(rb"\d+(?:\.\d+)*")
# Redshift SQL the backend uses and stock PostgreSQL lacks, for a stand-in database: LISTAGG
# (without WITHIN GROUP) made of string_agg's own C functions, so it runs at a warehouse's speed.
# Redshift fails a LISTAGG above 65,535 bytes; this one does not, so tests check chunk sizes.
REDSHIFT_FUNCTIONS = (
    "CREATE AGGREGATE listagg(text, text) "
    "(SFUNC = string_agg_transfn, STYPE = internal, FINALFUNC = string_agg_finalfn)"
)


class PgShim:
    """A loopback TCP proxy to ``upstream`` running its own asyncio loop in a daemon thread."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-shim", daemon=True)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task] = set()
        self.port = 0
        # Appended from the loop thread (list.append is atomic); tests read and clear them.
        self.parsed_sql: list[str] = []
        self.command_tags: list[str] = []

    def start(self) -> int:
        """Listen on a free loopback port and return it."""
        self._thread.start()
        listen = asyncio.start_server(self._session, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(listen, self._loop).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def stop(self) -> None:
        """Stop listening, cut open sessions and end the loop thread."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._sessions:
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        await self._server.wait_closed()

    async def _session(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._proxy(client_r, client_w)
        except (asyncio.CancelledError, asyncio.IncompleteReadError, ConnectionError):
            # A peer left mid-startup, or stop() cut us: end quietly (asyncio would log a traceback).
            pass
        finally:
            client_w.close()
            self._sessions.discard(task)

    async def _proxy(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._upstream)
        try:
            server_w.write(strip_startup(await _read_startup(client_r)))
            pumps = [
                asyncio.create_task(_pump(client_r, server_w, self._frontend, frozenset(b"P"))),
                asyncio.create_task(_pump(server_r, client_w, self._backend, frozenset(b"CS"))),
            ]
            try:
                # Either side hanging up ends the session; the other pump has nothing left to do.
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            server_w.close()

    def _frontend(self, kind: bytes, body: bytes) -> bytes:
        if kind == b"P":  # Parse: statement name, query text, parameter types
            self.parsed_sql.append(body.split(b"\0", 2)[1].decode())
        return body

    def _backend(self, kind: bytes, body: bytes) -> bytes:
        if kind == b"C":  # CommandComplete
            self.command_tags.append(body.rstrip(b"\0").decode())
        return plain_server_version(body) if kind == b"S" else body


async def _read_startup(reader: asyncio.StreamReader) -> bytes:
    """The StartupMessage is the only untyped frontend message: Int32 length, then the body."""
    length = struct.unpack("!i", await reader.readexactly(4))[0]
    return struct.pack("!i", length) + await reader.readexactly(length - 4)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    rewrite: Callable[[bytes, bytes], bytes],
    inspected: frozenset[int],
) -> None:
    """Forward typed messages (Byte1 kind, Int32 length, body) as they come, in whatever
    pieces the socket gives; only messages of an ``inspected`` kind go through ``rewrite``.
    (An await per message made the proxy, not the driver, the bottleneck of a million-row
    fetch: 21 s where psql direct takes 9 s.)"""
    pending = bytearray()
    try:
        while data := await reader.read(1 << 18):
            pending += data
            out, at, run = bytearray(), 0, 0  # pending[run:at]: whole messages passed as they are
            while len(pending) - at >= 5:
                kind = pending[at]  # an int: one byte
                end = at + 1 + int.from_bytes(pending[at + 1 : at + 5], "big")
                if end > len(pending):
                    break
                if kind in inspected:
                    body = rewrite(bytes((kind,)), bytes(pending[at + 5 : end]))
                    out += pending[run:at] + bytes((kind,)) + struct.pack("!i", len(body) + 4) + body
                    run = end
                at = end
            out += pending[run:at]
            del pending[:at]
            writer.write(out)
            await writer.drain()
    except ConnectionError:
        pass  # a peer hung up


def strip_startup(message: bytes) -> bytes:
    """Drop :data:`REDSHIFT_ONLY_PARAMS` from a StartupMessage (length, protocol, key\\0value\\0…\\0)."""
    protocol, fields = message[4:8], message[8:].split(b"\0")[:-2]
    pairs = zip(fields[::2], fields[1::2], strict=True)
    body = protocol + b"".join(k + b"\0" + v + b"\0" for k, v in pairs if k not in REDSHIFT_ONLY_PARAMS)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def plain_server_version(body: bytes) -> bytes:
    """Cut a ParameterStatus ``server_version`` like ``15.20 (Debian …)`` down to ``15.20``."""
    key, value, _ = body.split(b"\0")
    match = _PLAIN_VERSION.match(value)
    if key != b"server_version" or match is None:
        return body
    return key + b"\0" + match.group() + b"\0"
