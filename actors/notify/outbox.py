"""``file:///path/notifications.jsonl``: the embedded default, one JSON line per notification."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from actors.notify.base import Notification, NotifyOptions


class OutboxNotifier:
    """One JSON line per notification in ``notifications.jsonl`` (flock'd, fsync'd)."""

    def __init__(self, url: str, options: NotifyOptions | None = None):
        self.path = path = Path(urlsplit(url).path)
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, note: Notification) -> None:
        line = json.dumps(note.body(), ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
