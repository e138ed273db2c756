"""``cluster/``: how the service runs beyond one process, checked or run for real.

Run for real here, each in a subprocess with its own local Ray (``ray.init(address="local")``,
its own temp dir, never port 6379), so they never meet the session's Ray and Serve from
``tests/conftest.py``; every process they start is stopped by pid at the end:

- ``cluster/serve_config.yaml`` through Ray's own ``serve run`` command, on a tiny DuckDB
  warehouse: health check, one report to ``done``, the file downloaded, the config's deployment
  overrides seen in the Serve controller's log;
- HTTPS terminated by the Serve proxy (``http_options.ssl_certfile`` / ``ssl_keyfile``) with a
  self-signed certificate: a verified TLS request gets 200, plain HTTP and an unverified CA fail;
  and the same through ``catalog-report serve --ssl-certfile/--ssl-keyfile``.

Checked, not deployed (no Kubernetes cluster, GCP project or Docker engine is reachable here):
``cluster/kuberay-rayservice.yaml`` (its serveConfigV2 against ``ServeDeploySchema`` and equal to
``serve_config.yaml``), ``cluster/cluster-launcher-gcp.yaml`` (Ray's ``ray-schema.json`` and the
``prepare_config``/``validate_config`` that ``ray up`` runs before calling the cloud),
``cluster/Dockerfile`` (every COPY source exists, the entrypoint works, one version everywhere).
``cluster/local-multinode.sh`` is run by hand (output in ``cluster/multinode.md``); here only its
syntax and its safety rules are checked.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import typing
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
SECRET = "cluster-test-secret-0123456789-abcdefghij"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def load(name: str):
    return yaml.safe_load((CLUSTER / name).read_text())


def load_all(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((CLUSTER / name).read_text()) if d]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- strictness the schema lacks -------------------------------------------------------------


def _models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, Union, List, Dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def unknown_keys(model: type[BaseModel], data, where: str = "") -> list[str]:
    """Keys that ``model`` would silently ignore: Serve's schemas accept extra fields for forward
    compatibility, so a typo (``num_replica``) validates and then does nothing."""
    if not isinstance(data, dict):
        return []
    names = {}
    for name, field in model.model_fields.items():
        names[name] = field
        if field.alias:
            names[field.alias] = field
    bad = []
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            bad.append(path)
            continue
        for sub in _models_in(names[key].annotation):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                bad += unknown_keys(sub, item, f"{path}[{i}]" if isinstance(value, list) else path)
            break
    return bad


def check_serve_config(raw: dict):
    from ray.serve.schema import ServeDeploySchema

    parsed = ServeDeploySchema.model_validate(raw)
    assert not (bad := unknown_keys(ServeDeploySchema, raw)), f"keys Serve would silently ignore: {bad}"
    return parsed


# --- the Serve config ------------------------------------------------------------------------


def test_serve_config_validates_against_ray_schema_and_the_app(monkeypatch):
    from ray import serve
    from ray.serve.schema import HTTPOptionsSchema

    from actors.config.settings import Settings, load_settings
    from actors.job.deployment import JobConsumer
    from serve_app.app import ReportsAPI, build_app

    raw = load("serve_config.yaml")
    parsed = check_serve_config(raw)
    assert parsed.proxy_location.value == "EveryNode"
    assert (parsed.http_options.host, parsed.http_options.port) == ("0.0.0.0", 8000)
    [app] = parsed.applications
    assert app.import_path == "serve_app.app:build_app" and app.route_prefix == "/"

    # Deployment overrides name deployments that exist (a wrong name would fail only at deploy).
    names = {d.name for d in app.deployments}
    assert names == {ReportsAPI.name, JobConsumer.name} == {"ReportsAPI", "JobConsumer"}
    api = next(d for d in app.deployments if d.name == "ReportsAPI")
    assert api.autoscaling_config["min_replicas"] <= api.autoscaling_config["max_replicas"]

    # args are settings (or api_replicas) and env_vars are REPORTS_* settings: the app ignores
    # unknown ones, so a typo would be silent.
    fields = set(Settings.model_fields)
    assert set(app.args) - {"api_replicas", "consumer_autoscaling"} <= fields
    env = app.runtime_env["env_vars"]
    assert all(k.startswith("REPORTS_") and k.removeprefix("REPORTS_").lower() in fields for k in env)
    assert all(isinstance(v, str) for v in env.values())  # runtime_env env_vars must be strings
    assert not {k for k in env if re.search("SECRET|TOKEN|PASSWORD|_URL$", k)}, "per-environment/secret"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REPORTS_JWT_SECRET", SECRET)
    settings = load_settings(**{k: v for k, v in app.args.items() if k not in ("api_replicas", "consumer_autoscaling")})
    assert settings.render_workers == app.args["render_workers"]
    assert isinstance(build_app(dict(app.args)), serve.Application)

    # The TLS keys shown commented out are real HTTPOptions fields.
    commented = re.findall(r"#\s*(ssl_\w+):", (CLUSTER / "serve_config.yaml").read_text())
    assert commented and set(commented) <= set(HTTPOptionsSchema.model_fields)


def test_unknown_keys_are_caught():
    raw = copy.deepcopy(load("serve_config.yaml"))
    raw["applications"][0]["deployments"][1]["num_replica"] = 3
    raw["http_options"]["sll_certfile"] = "x"
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(raw)  # Ray accepts it…
    assert unknown_keys(ServeDeploySchema, raw) == [  # …and we do not
        "http_options.sll_certfile",
        "applications[0].deployments[1].num_replica",
    ]


# --- subprocesses with their own Ray -----------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The process's start time (to tell it from a later one with the same pid); None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every process below ``root`` (Ray workers leave its process group)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = {}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if (started := _start_time(child)) is not None:
                found[child] = started
                stack.append(child)
    return found


class RayProcess:
    """A Python process that starts its own local Ray, in its own session, with Ray's temp dir
    in a fresh short directory (RAY_TMPDIR; so ``ray.init()`` there never finds another
    cluster's address file). ``stop()`` ends it with SIGINT, then SIGKILLs by pid whatever it
    started that is still there."""

    def __init__(self, *args: str, env: dict[str, str]):
        self.temp = Path(tempfile.mkdtemp(prefix="crt", dir="/tmp"))  # short: unix socket paths
        self.log_path = self.temp / "out.log"
        self._log = open(self.log_path, "wb")
        clean = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**clean, "RAY_TMPDIR": str(self.temp), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ours: dict[int, str] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} (exit {self.proc.poll()}):\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def serve_log(self, pattern: str) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.temp.glob(f"ray/session_*/logs/serve/{pattern}"))

    def stop(self) -> None:
        self.ours = _descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_start_time(p) == s for p, s in self.ours.items()):
            time.sleep(0.2)
        for pid, started in self.ours.items():
            if _start_time(pid) == started:  # still the same process, not a reused pid
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


def wait_http(client: httpx.Client, url: str, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = client.get(url)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not healthy after {timeout}s")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from actors.warehouse.demo import generate

    data = tmp_path_factory.mktemp("cluster-data")
    generate(data / "warehouse.duckdb", institutions=2, courses=60, schools=4, views=600, enrollments=200, seed=7)
    return data


SERVE_RUN = """
import sys, ray
from ray.serve._private.constants import SERVE_NAMESPACE
ray.init(address="local", num_cpus=2, include_dashboard=False, namespace=SERVE_NAMESPACE,
         log_to_driver=False)
from ray.serve.scripts import cli
cli.main(["run", sys.argv[1]])  # Ray's own `serve run CONFIG`, on the Ray started above
"""


def test_serve_config_deploys_and_produces_a_report(tmp_path, tiny_data):
    """`serve run cluster/serve_config.yaml`, unchanged but for the listen address; the data dir
    and the JWT secret come from the environment, as on a real node."""
    from serve_app.auth import mint_token

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = load("serve_config.yaml")
    config["http_options"] |= {"host": "127.0.0.1", "port": port}
    (tmp_path / "serve_config.yaml").write_text(yaml.safe_dump(config))
    env = {"REPORTS_DATA_DIR": str(tiny_data), "REPORTS_JWT_SECRET": SECRET, "REPORTS_PUBLIC_BASE_URL": base}
    ray_proc = RayProcess("-c", SERVE_RUN, str(tmp_path / "serve_config.yaml"), env=env)
    try:
        ray_proc.wait_for("Submitted deploy config successfully", timeout=60)
        with httpx.Client(base_url=base, timeout=10) as client:
            assert wait_http(client, "/healthz", timeout=60).json() == {"status": "ok"}
            auth = {"Authorization": f"Bearer {mint_token(SECRET, 1, 7, 'demo', 600)}"}
            r = client.get(
                "/institution/reports/catalog",
                headers=auth,
                params={"start_date": "2025-01-01", "end_date": "2026-12-31"},
            )
            assert r.status_code == 200, r.text
            job_id = r.json()["results"]["id"]
            deadline = time.monotonic() + 45
            while (job := client.get(f"/institution/reports/jobs/{job_id}", headers=auth).json()["results"])[
                "status"
            ] not in ("done", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.3)
            assert job["status"] == "done" and job["rows"] > 0, job
            file = client.get(job["url"].removeprefix(base))
            assert file.status_code == 200 and file.content[:2] == b"PK"
        note = json.loads((tiny_data / "notifications.jsonl").read_text().splitlines()[-1])
        assert (note["jobId"], note["status"]) == (job_id, "done")
        # The config's deployment overrides reached Serve (not the code's defaults).
        controller = ray_proc.serve_log("controller_*.log")
        assert "Registering autoscaling state for deployment Deployment(name='ReportsAPI'" in controller
        assert (
            "Using custom autoscaling policy 'actors.job.autoscaling:BacklogPolicy' for deployment "
            "'Deployment(name='JobConsumer'" in controller
        )
    finally:
        ray_proc.stop()
    assert not any(_start_time(p) == s for p, s in ray_proc.ours.items()), "processes left behind"


# --- HTTPS at the Serve proxy --------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "catalog-report test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


SERVE_TLS = """
import json, signal, sys, threading, ray
from ray import serve
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
http, values = json.loads(sys.argv[1]), json.loads(sys.argv[2])
from serve_app.app import build_app
serve.start(http_options=http)  # what `catalog-report serve --ssl-certfile/--ssl-keyfile` would do
serve.run(build_app(values), name="catalog-report", route_prefix="/")
print("READY", flush=True)
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
serve.shutdown()
ray.shutdown()
"""


def test_https_terminated_by_the_serve_proxy(tmp_path, tiny_data):
    cert, key = self_signed(tmp_path)
    port = free_port()
    http = {"host": "127.0.0.1", "port": port, "ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    values = {
        "data_dir": str(tmp_path / "data"),
        "warehouse_url": f"duckdb://{tiny_data}/warehouse.duckdb",
        "jwt_secret": SECRET,
        "render_workers": 1,
        "public_base_url": f"https://localhost:{port}",
    }
    ray_proc = RayProcess("-c", SERVE_TLS, json.dumps(http), json.dumps(values), env={})
    try:
        ray_proc.wait_for("READY", timeout=60)
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=trust, timeout=10) as client:
            r = wait_http(client, f"https://127.0.0.1:{port}/healthz", timeout=30)
            assert r.json() == {"status": "ok"} and r.http_version in ("HTTP/1.1", "HTTP/2")
            r = client.get(
                f"https://localhost:{port}/institution/reports/jobs/nope", headers={"Authorization": "Bearer not-a-jwt"}
            )
            assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        # Plain HTTP to the TLS port gets no HTTP answer…
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        # …and a client that does not trust the certificate refuses it.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        ray_proc.stop()


def test_cli_serve_https(tmp_path, tiny_data):
    """`catalog-report serve --ssl-certfile C --ssl-keyfile K`: HTTPS end to end, links included."""
    from serve_app.auth import mint_token

    cert, key = self_signed(tmp_path)
    port = free_port()
    env = {
        "REPORTS_DATA_DIR": str(tmp_path / "data"),
        "REPORTS_WAREHOUSE_URL": f"duckdb://{tiny_data}/warehouse.duckdb",
        "REPORTS_JWT_SECRET": SECRET,
        "REPORTS_RENDER_WORKERS": "1",
    }
    ray_proc = RayProcess(
        "-c",
        "import sys; from serve_app.cli import main; sys.argv[0] = 'catalog-report'; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        env=env,
    )
    try:
        ray_proc.wait_for("serving at", timeout=90)
        assert f"serving at https://127.0.0.1:{port}" in ray_proc.log()
        auth = {"Authorization": f"Bearer {mint_token(SECRET, 1, 7, 'demo', 600)}"}
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as client:
            base = f"https://127.0.0.1:{port}"
            assert client.get(f"{base}/healthz").json() == {"status": "ok"}
            r = client.get(
                f"{base}/institution/reports/catalog",
                headers=auth,
                params={"start_date": "2025-01-01", "end_date": "2026-12-31"},
            )
            job_id = r.json()["results"]["id"]
            deadline = time.monotonic() + 45
            while (job := client.get(f"{base}/institution/reports/jobs/{job_id}", headers=auth).json()["results"])[
                "status"
            ] not in ("done", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.3)
            assert job["status"] == "done" and job["url"].startswith(f"{base}/"), job
            assert client.get(job["url"]).content[:2] == b"PK"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        ray_proc.stop()


# --- KubeRay ----------------------------------------------------------------------------------


def _docs_by_kind() -> dict[str, dict]:
    docs = load_all("kuberay-rayservice.yaml")
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs) and set(by_kind) == {"ServiceAccount", "ConfigMap", "RayService", "Ingress"}
    return by_kind


def _containers(rayservice: dict) -> list[dict]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    return [c for pod in pods for c in pod["spec"]["containers"]]


def image_tag() -> str:
    """The image every deployment file names: <registry>/catalog-report:<version>."""
    return f"/catalog-report:{VERSION}"


def test_rayservice_embeds_the_tested_serve_config():
    rs = _docs_by_kind()["RayService"]
    assert (rs["apiVersion"], rs["kind"]) == ("ray.io/v1", "RayService")
    embedded = rs["spec"]["serveConfigV2"]
    assert isinstance(embedded, str)  # KubeRay takes serveConfigV2 as a YAML string
    check_serve_config(yaml.safe_load(embedded))
    assert yaml.safe_load(embedded) == load("serve_config.yaml"), "serveConfigV2 drifted from serve_config.yaml"


def test_rayservice_structure():
    docs = _docs_by_kind()
    rs, ingress, config_map, account = docs["RayService"], docs["Ingress"], docs["ConfigMap"], docs["ServiceAccount"]
    assert len({d["metadata"]["namespace"] for d in docs.values()}) == 1
    cluster = rs["spec"]["rayClusterConfig"]
    import ray

    pinned = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("ray["))
    assert cluster["rayVersion"] == ray.__version__ == pinned.split("==")[1]
    assert rs["spec"]["upgradeStrategy"]["type"] in ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")

    head = cluster["headGroupSpec"]
    groups = cluster["workerGroupSpecs"]
    assert groups and all(
        {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"} <= set(g) for g in groups
    )
    for params in [head["rayStartParams"]] + [g["rayStartParams"] for g in groups]:
        assert all(isinstance(v, str) for v in params.values()), "rayStartParams is map[string]string"
    for g in groups:
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        [c] = g["template"]["spec"]["containers"]
        assert str(c["resources"]["limits"]["cpu"]) == g["rayStartParams"]["num-cpus"]

    from actors.config.settings import Settings

    fields = set(Settings.model_fields)
    assert all(k.startswith("REPORTS_") and k[8:].lower() in fields for k in config_map["data"])
    assert not any(re.search("SECRET|TOKEN|PASSWORD", k) for k in config_map["data"])
    containers = _containers(rs)
    for c in containers:
        assert c["image"].endswith(image_tag())
        assert c["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
        secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
        assert "REPORTS_JWT_SECRET" in secret_env
        assert all(ref["key"] == name and ref["name"] == "catalog-report-secrets" for name, ref in secret_env.items())
        assert all(n[8:].lower() in fields for n in secret_env)
        assert all("value" not in e for e in c["env"]), "secrets only by reference"
    assert len({c["image"] for c in containers}) == 1
    for pod in [head["template"]] + [g["template"] for g in groups]:
        spec = pod["spec"]
        assert spec["serviceAccountName"] == account["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == dockerfile_uid()

    # The Ingress terminates TLS and sends traffic to KubeRay's Serve service on the Serve port.
    assert (ingress["apiVersion"], ingress["kind"]) == ("networking.k8s.io/v1", "Ingress")
    tls_hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
    assert tls_hosts and all(t["secretName"] for t in ingress["spec"]["tls"])
    serve_port = yaml.safe_load(rs["spec"]["serveConfigV2"])["http_options"]["port"]
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls_hosts
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend == {"name": f"{rs['metadata']['name']}-serve-svc", "port": {"number": serve_port}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert config_map["data"]["REPORTS_PUBLIC_BASE_URL"] == f"https://{sorted(tls_hosts)[0]}"


# --- Ray cluster launcher (GCP) ------------------------------------------------------------------


def test_cluster_launcher_validates_against_rays_schema():
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = load("cluster-launcher-gcp.yaml")
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(raw, json.loads(schema_path.read_text()))
    validate_config(prepare_config(copy.deepcopy(raw)))  # what `ray up` runs before the cloud calls

    assert raw["provider"]["type"] == "gcp"
    assert raw["head_node_type"] in raw["available_node_types"]
    assert raw["docker"]["image"] == _containers(_docs_by_kind()["RayService"])[0]["image"]
    assert raw["docker"]["image"].endswith(image_tag())
    # The synced checkout is what setup installs; the env file passed to docker is the one written.
    [(remote, local)] = raw["file_mounts"].items()
    assert local == "." and ".venv" in raw["rsync_exclude"]
    assert any(f"pip install --no-deps --force-reinstall {remote}" == c for c in raw["setup_commands"])
    env_file = next(o.split()[1] for o in raw["docker"]["run_options"] if o.startswith("--env-file"))
    assert any(f"> {env_file}" in c for c in raw["initialization_commands"])


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (CLUSTER / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def dockerfile_uid() -> int:
    run = " ".join(a for i, a in dockerfile() if i == "RUN")
    return int(re.search(r"useradd [^&]*--uid (\d+)", run).group(1))


def test_dockerfile_references_what_exists():
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert ("ARG", f"VERSION={VERSION}") in steps, "image version = pyproject version"
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("root", "0") and dockerfile_uid() != 0

    copied: dict[str, Path] = {}  # path in the image -> file in the repository
    for instruction, args in steps:
        if instruction != "COPY":
            continue
        parts = [p for p in args.split() if not p.startswith("--")]
        assert "--from" not in args
        *sources, dest = parts
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
            for file in [ROOT / src] if (ROOT / src).is_file() else (ROOT / src).rglob("*"):
                target = (
                    dest.rstrip("/")
                    + "/"
                    + (file.name if (ROOT / src).is_file() else str(file.relative_to(ROOT / src)))
                )
                copied[target] = file
    assert PYPROJECT["project"]["readme"] in {p.name for p in copied.values()}  # `pip install .` needs it

    workdir = next(a for i, a in steps if i == "WORKDIR")
    entrypoint = json.loads(next(a for i, a in steps if i == "ENTRYPOINT"))
    script = entrypoint[-1]
    relative = {str(Path(workdir) / k.removeprefix("./")): v for k, v in copied.items()}
    assert script in relative, f"ENTRYPOINT {script} is not copied into the image"
    assert os.access(relative[script], os.X_OK), "the entrypoint must be executable in git"
    config_in_image = str(Path(script).parent / "serve_config.yaml")
    assert relative[config_in_image] == CLUSTER / "serve_config.yaml"
    assert ".venv" in (CLUSTER / "Dockerfile.dockerignore").read_text().split()


def test_entrypoint_runs_args_or_serve_run(tmp_path):
    script = CLUSTER / "docker-entrypoint.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    # With arguments (the cluster launcher's `bash`, any command): they run as given.
    out = subprocess.run([str(script), "echo", "ray", "start"], capture_output=True, text=True, check=True)
    assert out.stdout == "ray start\n"
    # Without: `serve run` of the config next to the script (a stand-in `serve` records the call).
    fake = tmp_path / "serve"
    fake.write_text('#!/bin/sh\necho "serve $*"\n')
    fake.chmod(0o755)
    out = subprocess.run(
        [str(script)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
    )
    assert out.stdout == f"serve run {CLUSTER}/serve_config.yaml\n"


# --- the local multi-node recipe ------------------------------------------------------------------


def test_local_multinode_script_is_safe_next_to_other_rays():
    text = (CLUSTER / "local-multinode.sh").read_text()
    assert subprocess.run(["bash", "-n", str(CLUSTER / "local-multinode.sh")]).returncode == 0
    commands = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "6379" not in commands
    assert not re.search(r"ray stop|pkill|killall", commands), "stop only this cluster's pids"
    assert commands.count("--temp-dir") == 2  # both nodes: so ray.init() elsewhere never finds it
    assert (CLUSTER / "multinode.md").exists()
