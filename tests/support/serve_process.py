"""``catalog-report serve`` started as a user starts it, read as a user reads it, and stopped
without touching any other Ray on the machine.

Its Ray gets its own temp dir (``RAY_TMPDIR``, removed when it stops), so the session
directory (where Ray writes the Prometheus configuration and service-discovery file) is this
service's alone, and the service runs in its own process group: stopping it is Ctrl-C, then
SIGKILL to that group and to any process whose command line names that temp dir. Used by
tests/cluster/test_dashboard.py and bench/dashboard_screenshots.py."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("catalog-report"))  # the installed console script
# Ray settings of whoever runs the tests must not leak into a service that starts its own Ray.
RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


class ServeProcess:
    def __init__(self, args: list[str], env: dict[str, str], timeout: float = 300):
        # Under /tmp and short: Ray's socket paths must stay under 108 bytes. Removed by stop().
        self.ray_tmpdir = Path(tempfile.mkdtemp(prefix="crserve-", dir="/tmp"))
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in RAY_ENV},
            "RAY_TMPDIR": str(self.ray_tmpdir),
            **env,
        }
        self.log = open(self.ray_tmpdir / "serve.log", "w+")
        self.proc = subprocess.Popen(
            [CLI, "serve", *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):  # serve's last line
                return
        self.log.seek(0)
        printed = "\n".join(self.lines) + "\n" + self.log.read()[-3000:]
        self.stop()
        raise AssertionError("serve did not start:\n" + printed)

    def printed(self, pattern: str) -> str:
        """The first group of ``pattern`` in the printed lines."""
        for line in self.lines:
            if found := re.search(pattern, line):
                return found.group(1)
        raise AssertionError(f"{pattern!r} not printed:\n" + "\n".join(self.lines))

    @property
    def api_url(self) -> str:
        return self.printed(r"serving at (\S+)")

    @property
    def dashboard_url(self) -> str:
        return self.printed(r"^Ray dashboard: (http\S+)")

    @property
    def session_dir(self) -> Path:
        return (self.ray_tmpdir / "ray" / "session_latest").resolve()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C: serve.shutdown(), ray.shutdown()
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                pass
        ours = subprocess.run(["pgrep", "-f", "--", str(self.ray_tmpdir)], capture_output=True, text=True)
        for pid in [-self.proc.pid, *map(int, ours.stdout.split())]:  # -pid: the whole process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(30)
        self.log.close()
        shutil.rmtree(self.ray_tmpdir, ignore_errors=True)
