"""README's "Production backends on your laptop", as a newcomer runs it: the stand-ins script,
the exports it prints, queue-setup, serve, one report notified with a signed link."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET, free_port
from tests.support.emulators import EMULATOR

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("catalog-report"))


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Production backends on your laptop", 1)[1].split("\n## ", 1)[0]


def exports(text: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"^export (\w+)=(\S+)", text, re.M)}


@pytest.mark.slow
def test_the_laptop_recipe_runs_a_report_end_to_end(tmp_path, warehouse):
    if not EMULATOR.exists():
        pytest.skip(f"the Pub/Sub emulator is not installed on this machine ({EMULATOR} is missing)")
    ports = {"--pubsub-port": free_port(), "--gcs-port": free_port(), "--notify-port": free_port()}
    stand_ins = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.stand_ins",
            "--dir",
            str(tmp_path / "stand-ins"),
            *[str(x) for kv in ports.items() for x in kv],
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    serve = None
    try:
        printed = []
        while not printed or "Ctrl-C stops them" not in printed[-1]:
            line = stand_ins.stdout.readline()
            assert line, "stand-ins exited:\n" + "".join(printed)
            printed.append(line)
        given = exports("".join(printed))
        section = readme_section()
        assert exports(section).keys() == given.keys()  # README shows what the script prints
        commands = [line for line in "".join(printed).splitlines() if line.startswith(".venv/bin/catalog-report")]
        assert commands and all(c in section for c in commands)

        env = {
            **os.environ,
            **{k: v.strip("'") for k, v in given.items()},
            "REPORTS_DATA_DIR": str(tmp_path / "data"),
            "REPORTS_JWT_SECRET": SECRET,
            "REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}",
            "RAY_ADDRESS": "",
        }
        setup = subprocess.run(
            [CLI, "queue-setup", "--no-retry-policy"], env=env, capture_output=True, text=True, timeout=120
        )
        assert setup.returncode == 0 and "without a retry policy" in setup.stderr, setup.stderr
        port = free_port()
        log = open(tmp_path / "serve.log", "w+")
        serve = subprocess.Popen(
            [CLI, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        curl = None
        deadline = time.monotonic() + 180
        while curl is None and time.monotonic() < deadline:
            line = serve.stdout.readline()
            assert line, "serve exited:\n" + (tmp_path / "serve.log").read_text()[-3000:]
            curl = shlex.split(line.strip()) if "curl" in line else None
        r = httpx.get(curl[-1], headers={"Authorization": curl[3].split(": ", 1)[1]}, timeout=30)
        assert r.status_code == 200, r.text
        job_id = r.json()["results"]["id"]

        note = None
        deadline = time.monotonic() + 120
        while note is None and time.monotonic() < deadline:
            line = stand_ins.stdout.readline()
            if line.startswith("notification: "):
                body = json.loads(line.removeprefix("notification: "))
                note = body if body["jobId"] == job_id else None
        assert note and note["status"] == "done", note
        assert note["url"].startswith(given["STORAGE_EMULATOR_HOST"]) and "X-Goog-Signature=" in note["url"]
        assert httpx.get(note["url"], timeout=30).content[:2] == b"PK"
        assert json.loads(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).text) == {"status": "ok"}
    finally:
        for proc in (serve, stand_ins):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
