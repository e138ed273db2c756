"""README's "Production backends on your laptop", as a newcomer runs it: the stand-ins script,
the exports it prints, queue-setup, serve, one report notified with a signed link; then SPEC
§2a's routes on those backends (Pub/Sub emulator, fake-gcs-server): a CSV by POST with an
Idempotency-Key, the history, a fresh V4-signed download, DELETE."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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
        reports_as_resources(f"http://127.0.0.1:{port}", curl, given["STORAGE_EMULATOR_HOST"], job_id)
    finally:
        for proc in (serve, stand_ins):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def reports_as_resources(base: str, curl: list[str], gcs: str, first_job: str) -> None:
    """SPEC §2a through the service on Pub/Sub and GCS (the same routes on file:// and local://:
    tests/serve_app/test_creating.py, test_history.py)."""
    auth = {"Authorization": curl[3].split(": ", 1)[1]}
    query = parse_qs(urlsplit(curl[-1]).query)
    body = {"startDate": query["start_date"][0], "endDate": query["end_date"][0], "format": "csv", "locale": "en"}
    post = [
        httpx.post(f"{base}/institution/reports/catalog", json=body, headers={**auth, "Idempotency-Key": "laptop-1"})
        for _ in range(2)
    ]
    assert [r.status_code for r in post] == [200, 200], post[0].text
    job_id = post[0].json()["results"]["id"]
    assert post[1].json()["results"]["id"] == job_id  # the replay created nothing
    deadline, status = time.monotonic() + 120, {}
    while status.get("status") not in ("done", "failed") and time.monotonic() < deadline:
        status = httpx.get(f"{base}/institution/reports/jobs/{job_id}", headers=auth, timeout=30).json()["results"]
        time.sleep(0.3)
    assert status["status"] == "done" and ".csv?" in status["url"], status

    listed = httpx.get(f"{base}/institution/reports/jobs", headers=auth, timeout=30).json()["results"]
    assert [j["id"] for j in listed] == [job_id, first_job]

    r = httpx.get(f"{base}/institution/reports/jobs/{job_id}/file", headers=auth, timeout=30)
    link = r.headers["location"]
    assert r.status_code == 302 and link.startswith(gcs) and "X-Goog-Signature=" in link
    download = httpx.get(link, timeout=30)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"), newline="")))
    assert rows[0][:2] == ["ID", "Title"] and len(rows) == status["rows"] + 1
    assert httpx.get(f"{base}/institution/reports/jobs/{job_id}", headers=auth).json()["results"]["downloads"] == 1

    deleted = httpx.delete(f"{base}/institution/reports/jobs/{job_id}", headers=auth, timeout=30)
    assert deleted.json()["results"]["status"] == "deleted"
    assert httpx.get(link, timeout=30).status_code == 404  # the object is gone
