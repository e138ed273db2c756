"""``local:///dir``: a durable queue in one SQLite file (WAL, fsync on commit).

Chosen over a list-style persistent queue library because redelivery here is by lease expiry,
like Pub/Sub's ack deadline: a consumer that dies mid-job (not only one that restarts the whole
service) gets its job redelivered, and several processes can publish and consume safely.
Messages that fail ``max_attempts`` times, or cannot be parsed, move to the ``dead`` state.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from actors.queue.base import PUBLISH_TIMEOUT, Delivery, QueueUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    published_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    token TEXT,
    dead_reason TEXT
);
CREATE INDEX IF NOT EXISTS ready ON messages (dead_reason, lease_until, published_at);
"""
BUSY_SECONDS = 30  # how long a statement waits for another process's write lock
POLL_SECONDS = 0.2  # a full lease attempt at least this often (leases expire without a write)
WATCH_SECONDS = 0.02  # how often a waiting consumer checks whether another process wrote


class LocalQueue:
    def __init__(self, url: str):
        self.directory = Path(urlsplit(url).path)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.directory / "queue.sqlite3", timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    @staticmethod
    def check_url(url: str) -> None:
        parts = urlsplit(url)
        if parts.netloc or not parts.path.startswith("/") or parts.query:
            raise ValueError(f"expected local:///absolute/directory (no host, no options), got {url!r}")

    def publish(self, data: bytes, timeout: float = PUBLISH_TIMEOUT) -> str:
        """Waits at most ``timeout`` for a write lock another process holds."""
        message_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            try:
                self._db.execute(
                    "INSERT INTO messages (id, data, published_at) VALUES (?, ?, ?)",
                    (message_id, data, time.time()),
                )
            except sqlite3.OperationalError as exc:
                raise QueueUnavailable(f"the queue database {self.directory} is unusable: {exc}") from exc
            finally:
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")
        return message_id

    def check(self, timeout: float) -> None:
        """A read: in WAL mode it never waits for a writer, so ``timeout`` is never reached."""
        with self._lock:
            try:
                self._db.execute("SELECT 1 FROM messages LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise QueueUnavailable(f"the queue database {self.directory} is unusable: {exc}") from exc

    def pull(self, max_messages: int = 1, lease_seconds: float = 60, wait_seconds: float = 0) -> list[Delivery]:
        """Waiting costs a ``PRAGMA data_version`` read every 20 ms (no lock, no transaction), so a
        job published by another process is picked up within ~20 ms, not at the next poll."""
        deadline = time.monotonic() + wait_seconds
        while True:
            version = self._data_version()
            got = self._lease(max_messages, lease_seconds)
            if got or time.monotonic() >= deadline:
                return got
            retry = min(deadline, time.monotonic() + POLL_SECONDS)
            while time.monotonic() < retry and self._data_version() == version:
                time.sleep(WATCH_SECONDS)

    def _data_version(self) -> int:
        """Changes whenever another connection commits to the file."""
        with self._lock:
            return self._db.execute("PRAGMA data_version").fetchone()[0]

    def _lease(self, n: int, lease_seconds: float) -> list[Delivery]:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT id, data, attempts FROM messages WHERE dead_reason IS NULL AND lease_until <= ?"
                    " ORDER BY published_at LIMIT ?",
                    (now, n),
                ).fetchall()
                out = []
                for message_id, data, attempts in rows:
                    token = uuid.uuid4().hex
                    self._db.execute(
                        "UPDATE messages SET attempts = attempts + 1, lease_until = ?, token = ? WHERE id = ?",
                        (now + lease_seconds, token, message_id),
                    )
                    out.append(Delivery(message_id, bytes(data), attempts + 1, token))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def _update(self, sql: str, delivery: Delivery, *params) -> None:
        with self._lock:
            self._db.execute(sql + " WHERE id = ? AND token = ?", (*params, delivery.message_id, delivery.token))

    def extend(self, delivery: Delivery, lease_seconds: float) -> None:
        self._update("UPDATE messages SET lease_until = ?", delivery, time.time() + lease_seconds)

    def ack(self, delivery: Delivery) -> None:
        self._update("DELETE FROM messages", delivery)

    def nack(self, delivery: Delivery, delay_seconds: float = 0) -> None:
        self._update("UPDATE messages SET lease_until = ?, token = NULL", delivery, time.time() + delay_seconds)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._update("UPDATE messages SET dead_reason = ?, token = NULL", delivery, reason[:1000])

    def dead_letters(self) -> list[tuple[str, bytes, str]]:
        """What was set aside, for an operator to inspect (and tests to count)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, data, dead_reason FROM messages WHERE dead_reason IS NOT NULL ORDER BY published_at"
            ).fetchall()
        return [(i, bytes(d), r) for i, d, r in rows]

    def pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages WHERE dead_reason IS NULL").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
