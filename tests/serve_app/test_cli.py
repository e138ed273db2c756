"""The ``catalog-report`` command as a user runs it, in subprocesses."""

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

import duckdb
import httpx
import jwt
import pytest

from tests.conftest import SECRET, free_port
from tests.support.workbook import read_both

CLI = [str(Path(sys.executable).with_name("catalog-report"))]  # the installed console script


def run(args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}, **kw
    )


def table_digest(path: Path) -> list:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            con.execute(f"SELECT count(*), sum(hash(t)) FROM {t} AS t").fetchone()
            for t in ("schools", "courses", "course_schools", "course_views", "enrollments")
        ]
    finally:
        con.close()


def test_token_is_signed_with_the_configured_secret():
    r = run(
        ["token", "--institution-id", "3", "--user-id", "9", "--subdomain", "acme", "--ttl", "120"],
        env={"REPORTS_JWT_SECRET": SECRET},
    )
    assert r.returncode == 0, r.stderr
    claims = jwt.decode(r.stdout.strip(), SECRET, algorithms=["HS256"])
    assert (claims["institutionId"], claims["userId"], claims["subdomain"]) == (3, 9, "acme")
    assert 100 <= claims["exp"] - time.time() <= 120


def test_token_says_nothing_about_the_development_secret(tmp_path):
    """Only ``serve`` checks tokens, so only it warns that the development secret is in use
    (``render``: test_render_writes_the_report)."""
    env = {"REPORTS_JWT_SECRET": "", "REPORTS_DATA_DIR": str(tmp_path)}
    r = run(["token", "--institution-id", "1", "--user-id", "1", "--subdomain", "x"], env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_a_library_warning_is_one_plain_line():
    r = run(
        ["token", "--institution-id", "1", "--user-id", "1", "--subdomain", "x"], env={"REPORTS_JWT_SECRET": "short"}
    )
    assert r.returncode == 0
    assert r.stderr.splitlines() == [
        "warning: The HMAC key is 5 bytes long, which is below the minimum recommended length of 32 bytes for SHA256. "
        "See RFC 7518 Section 3.2."
    ], r.stderr


def test_bad_configuration_fails_with_one_line_naming_the_variable():
    r = run(
        ["token", "--institution-id", "1", "--user-id", "1", "--subdomain", "x"],
        env={"REPORTS_QUEUE_URL": "kafka://somewhere"},
    )
    assert r.returncode == 2
    assert "REPORTS_QUEUE_URL" in r.stderr and "kafka" in r.stderr and "Traceback" not in r.stderr


def test_public_key_tokens_need_their_own_link_secret(tmp_path):
    """Download links must never be signed with the (public) JWT verification key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env = {"REPORTS_JWT_PUBLIC_KEY": pem, "REPORTS_DATA_DIR": str(tmp_path), "REPORTS_JWT_SECRET": ""}
    args = ["token", "--institution-id", "1", "--user-id", "1", "--subdomain", "x"]
    r = run(args, env=env)
    assert r.returncode == 2 and "REPORTS_LINK_SECRET is required" in r.stderr, r.stderr
    r = run(args, env={**env, "REPORTS_LINK_SECRET": "s" * 32})  # settings load; minting is refused
    assert "REPORTS_LINK_SECRET" not in r.stderr and "REPORTS_JWT_PUBLIC_KEY is set" in r.stderr, r.stderr


def test_demo_data_is_deterministic_per_seed(tmp_path):
    sizes = ["--institutions", "2", "--courses", "500", "--schools", "6", "--views", "3000", "--enrollments", "800"]
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        r = run(["demo-data", "--out", str(tmp_path / f"{name}.duckdb"), "--seed", seed, *sizes])
        assert r.returncode == 0, r.stderr
    a, b, c = (table_digest(tmp_path / f"{n}.duckdb") for n in "abc")
    assert a == b and a != c
    assert [n for n, _ in a] == [6, 500, a[2][0], 3000, 800]


def test_render_writes_the_report(tmp_path, warehouse):
    out = tmp_path / "out.xlsx"
    r = run(
        [
            "render",
            "--institution-id",
            "1",
            "--subdomain",
            "demo",
            "--start-date",
            "2025-01-01",
            "--end-date",
            "2025-12-31",
            "--school-ids",
            "10,12",
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        env={
            "REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}",
            "REPORTS_DATA_DIR": str(tmp_path),
            "REPORTS_JWT_SECRET": "",
        },
    )
    assert r.returncode == 0, r.stderr
    assert "JWT" not in r.stderr + r.stdout, r.stderr  # it checks no token: no word on the development secret
    assert re.search(r"^7 rows in [\d.]+s", r.stdout, re.M), r.stdout
    assert len(read_both(out)["Catálogo"]) == 8


class Server:
    """``catalog-report serve`` in its own process group, so a kill takes all of Ray with it."""

    def __init__(self, data_dir: Path, port: int):
        env = {
            **os.environ,
            "REPORTS_DATA_DIR": str(data_dir),
            "REPORTS_JWT_SECRET": SECRET,
            "REPORTS_LEASE_SECONDS": "3",
            "RAY_ADDRESS": "",
        }
        self.log = open(data_dir / f"serve-{time.time_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            CLI + ["serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if "curl" in line:
                return
        self.kill()
        self.log.seek(0)
        raise AssertionError("serve did not start:\n" + "".join(self.lines) + self.log.read()[-3000:])

    def curl(self) -> list[str]:
        return shlex.split(next(line for line in self.lines if "curl" in line).strip())

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


def outbox(data_dir: Path) -> list[dict]:
    path = data_dir / "notifications.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_serve_prints_a_working_curl_and_jobs_survive_a_kill(tmp_path):
    """The README's promise: ``serve`` creates demo data, prints a curl that returns a job id;
    a job accepted just before the whole service is killed is done after a restart, once."""
    from actors.warehouse.demo import generate

    data_dir = tmp_path / "svc"
    data_dir.mkdir()
    # Big enough that the job cannot finish in the moment between acceptance and the kill.
    generate(
        data_dir / "warehouse.duckdb", institutions=1, courses=400_000, schools=50, views=2_000_000, enrollments=200_000
    )
    port = free_port()
    server = Server(data_dir, port)
    args = server.curl()
    assert args[:2] == ["curl", "-s"] and args[2] == "-H"
    r = httpx.get(args[-1], headers={"Authorization": args[3].split(": ", 1)[1]}, timeout=30)
    assert r.status_code == 200, r.text
    job_id = r.json()["results"]["id"]
    server.kill()
    assert outbox(data_dir) == []

    server = Server(data_dir, port)
    deadline = time.monotonic() + 240
    while not outbox(data_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # would a second notification follow?
    notes = outbox(data_dir)
    assert [(n["jobId"], n["status"]) for n in notes] == [(job_id, "done")]
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    live = con.execute("SELECT count(*) FROM courses WHERE deleted_at IS NULL").fetchone()[0]
    con.close()
    assert notes[0]["rows"] == live
    path = next((data_dir / "files" / "catalog" / "1" / job_id).glob("*.xlsx"))
    assert path.stat().st_size > 1_000_000

    # Ctrl-C stops it cleanly.
    os.killpg(server.proc.pid, signal.SIGINT)
    assert server.proc.wait(90) == 0


def one_line_error(r: subprocess.CompletedProcess, variable: str, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("configuration error: ") and variable in lines[0], lines[0]
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "env, variable, words",
    [
        ({"REPORTS_STORAGE_URL": "gs://reports/pfx?public=yes"}, "REPORTS_STORAGE_URL", ["public", "'yes'"]),
        ({"REPORTS_STORAGE_URL": "gs://reports/pfx?chunk=8"}, "REPORTS_STORAGE_URL", ["unknown option 'chunk'"]),
        (
            {"REPORTS_STORAGE_URL": "gs://reports/pfx", "REPORTS_LINK_TTL_SECONDS": "900000"},
            "REPORTS_STORAGE_URL",
            ["REPORTS_LINK_TTL_SECONDS", "public=true"],
        ),
        ({"REPORTS_QUEUE_URL": "pubsub://proj/jobs?max_messages=two"}, "REPORTS_QUEUE_URL", ["max_messages", "'two'"]),
        ({"REPORTS_QUEUE_URL": "local://relative/queue"}, "REPORTS_QUEUE_URL", ["local:///absolute"]),
        (
            {"REPORTS_WAREHOUSE_URL": "redshift://u:p@127.0.0.1:9/db?ssl=maybe"},
            "REPORTS_WAREHOUSE_URL",
            ["ssl must be true or false"],
        ),
    ],
)
def test_serve_refuses_a_bad_backend_url_in_one_line_before_ray_starts(tmp_path, warehouse, env, variable, words):
    r = run(
        ["serve", "--port", str(free_port())],
        env={
            "REPORTS_DATA_DIR": str(tmp_path),
            "REPORTS_JWT_SECRET": SECRET,
            "REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}",
            **env,
        },
    )
    one_line_error(r, variable, *words)
    assert "Traceback" not in r.stderr and "Ray" not in r.stderr + r.stdout  # Ray announces its start


def test_serve_refuses_a_configured_warehouse_file_that_is_missing(tmp_path):
    """Demo data only for the embedded default: a configured file that is not there is an error."""
    missing = tmp_path / "moved" / "warehouse.duckdb"
    r = run(
        ["serve", "--port", str(free_port())],
        env={
            "REPORTS_DATA_DIR": str(tmp_path),
            "REPORTS_JWT_SECRET": SECRET,
            "REPORTS_WAREHOUSE_URL": f"duckdb://{missing}",
        },
    )
    one_line_error(r, "REPORTS_WAREHOUSE_URL", f"no DuckDB file at {missing}")
    assert not missing.exists() and not (tmp_path / "warehouse.duckdb").exists()


def test_queue_setup_refuses_a_mistyped_option_in_one_line():
    r = run(
        ["queue-setup"],
        env={"REPORTS_QUEUE_URL": "pubsub://proj/jobs?subscriptoin=worker", "REPORTS_JWT_SECRET": SECRET},
    )
    one_line_error(r, "REPORTS_QUEUE_URL", "unknown pubsub:// option(s) subscriptoin")


def test_serve_says_the_subscription_is_missing_before_ray_starts(tmp_path, warehouse, pubsub_emulator):
    r = run(
        ["serve", "--port", str(free_port())],
        env={
            "REPORTS_DATA_DIR": str(tmp_path),
            "REPORTS_JWT_SECRET": SECRET,
            "REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}",
            "REPORTS_QUEUE_URL": "pubsub://catalog-test/never-set-up?subscription=never-set-up",
        },
    )
    one_line_error(
        r,
        "REPORTS_QUEUE_URL",
        "projects/catalog-test/subscriptions/never-set-up does not exist",
        "catalog-report queue-setup",
    )


def test_serve_says_links_cannot_be_signed_before_ray_starts(tmp_path, warehouse, gcs_emulator):
    r = run(
        ["serve", "--port", str(free_port())],
        env={
            "REPORTS_DATA_DIR": str(tmp_path),
            "REPORTS_JWT_SECRET": SECRET,
            "REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}",
            "REPORTS_STORAGE_URL": "gs://reports/pfx",
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,
            "GOOGLE_APPLICATION_CREDENTIALS": "",
        },
    )
    one_line_error(
        r, "REPORTS_STORAGE_URL", "no Google credentials were found", "GOOGLE_APPLICATION_CREDENTIALS", "public=true"
    )


def test_render_takes_the_format_from_the_files_extension(tmp_path, warehouse):
    r = run(
        ["render", "--institution-id", "1", "--subdomain", "demo", "--start-date", "2025-01-01"]
        + ["--end-date", "2025-12-31", "--out", str(tmp_path / "out.txt")],
        env={"REPORTS_WAREHOUSE_URL": f"duckdb://{warehouse}", "REPORTS_DATA_DIR": str(tmp_path)},
    )
    assert r.returncode == 2 and "format 'txt' is not available" in r.stdout + r.stderr, r.stdout + r.stderr
