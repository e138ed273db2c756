"""Running a scenario script (a Ray cluster of its own, so a process of its own) and reading the
JSON it prints on its last ``RESULT`` line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent  # the scenario scripts live beside this module


def run_script(script: str, *args: object, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, str(TESTS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=TESTS.parents[1],
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def show_timeline(capsys, title: str, timeline: list, *extra: str) -> None:
    with capsys.disabled():
        print(f"\n{title}:")
        for at, event in timeline:
            print(f"  {at:7.2f}s  {event}")
        for line in extra:
            print(f"  {line}")
