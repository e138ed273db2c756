"""Python's end of tests/support/browser/dashboard.mjs: one headless Chromium on the Ray dashboard,
pages opened and captured when the caller says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

HARNESS = Path(__file__).parent / "browser"
CHROMIUM = "/usr/bin/chromium"


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no {CHROMIUM} (Debian package chromium)"
    if not shutil.which("node"):
        return "no node"
    if not (HARNESS / "node_modules" / "playwright-core").is_dir():
        return f"playwright-core not installed: cd {HARNESS} && npm ci"
    return None


class DashboardBrowser:
    def __init__(self, url: str, token: str):
        env = {**os.environ, "RAY_DASHBOARD_TOKEN": token, "CHROMIUM": CHROMIUM}
        self.proc = subprocess.Popen(
            ["node", str(HARNESS / "dashboard.mjs"), url],
            cwd=HARNESS,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line else {"error": f"harness exited with {self.proc.wait()}"}
        if "error" in answer:
            raise AssertionError(f"dashboard harness: {answer['error']}")
        return answer

    def _ask(self, **command) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def page(self, name: str, until: list[str] = (), seconds: float = 60, **view) -> dict:
        """Open ``#/name`` and wait until one table row holds every string of ``until``;
        ``view``: width, height (the window, CSS pixels), zoom, and whole=True to match the
        page's whole text instead of table rows (a detail page)."""
        return self._ask(page=name, until=list(until), seconds=seconds, **view)

    def screenshot(self, path: Path) -> int:
        return self._ask(screenshot=str(path))["bytes"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(60)
