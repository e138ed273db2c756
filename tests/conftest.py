"""Shared fixtures: one crafted warehouse, one Ray, one running service per test session."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.data import write_warehouse
from tests.support.emulators import (  # noqa: F401 (shared fixtures)
    _pubsub_emulator_process,
    free_port,
    gcs_emulator,
    own_pubsub_emulator,
    pubsub_emulator,
    pubsub_emulator_closing_streams,
    service_account_key,
)

SECRET = "test-secret-0123456789-0123456789-abcdef"
STUDENT = "https://{subdomain}.lxp.test/course/{course_id}"
ADMIN = "https://{subdomain}.lxp.test/admin/courses/{course_id}/edit"


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    return write_warehouse(tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb")


def base_settings(data_dir: Path, warehouse: Path, **extra) -> dict:
    return {
        "data_dir": str(data_dir),
        "warehouse_url": f"duckdb://{warehouse}",
        "jwt_secret": SECRET,
        "student_url_template": STUDENT,
        "admin_url_template": ADMIN,
        "lease_seconds": 3,
        "render_workers": 2,
        "chunk_rows": 4,
        **extra,
    }


@pytest.fixture(scope="session")
def settings_factory(warehouse):
    from actors.config.settings import load_settings

    def make(data_dir: Path, **extra):
        return load_settings(**base_settings(data_dir, warehouse, **extra))

    return make


@pytest.fixture(scope="session")
def ray_session():
    """One Ray for the session; its Prometheus endpoint on a known port, reported every 0.5 s."""
    import ray

    from actors.runtime.priority import workers_at_normal_priority
    from serve_app.front import use_in_proxy

    workers_at_normal_priority()  # as `catalog-report serve` starts its Ray
    use_in_proxy()
    for attempt in range(3):  # Ray 2.60's head sometimes never sees its raylet register (30 s): start again
        port = free_port()
        try:
            ray.init(
                address="local",
                num_cpus=4,
                include_dashboard=False,
                log_to_driver=False,
                _metrics_export_port=port,
                _system_config={"metrics_report_interval_ms": 500},
            )
            break
        except Exception as exc:
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
    ray.metrics_url = f"http://127.0.0.1:{port}/metrics"
    yield ray
    ray.shutdown()


@dataclass
class Service:
    base_url: str
    data_dir: Path
    settings: object

    def token(self, institution_id=1, user_id=7, subdomain="demo", ttl=600, **claims) -> str:
        import jwt

        body = {
            "institutionId": institution_id,
            "userId": user_id,
            "subdomain": subdomain,
            "exp": int(time.time()) + ttl,
            **claims,
        }
        return jwt.encode(body, SECRET, algorithm="HS256")

    def get(self, path: str, token: str | None = None, **kw) -> httpx.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.get(self.base_url + path, headers=headers, timeout=30, **kw)

    def request_report(self, token: str, **params) -> httpx.Response:
        return self.get("/institution/reports/catalog", token, params=params)

    def wait_done(self, job_id: str, token: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.get(f"/institution/reports/jobs/{job_id}", token)
            if r.status_code == 200 and r.json()["results"]["status"] in ("done", "failed"):
                return r.json()["results"]
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} not finished after {timeout}s: {r.status_code} {r.text}")

    def notifications(self) -> list[dict]:
        path = self.data_dir / "notifications.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def service(ray_session, warehouse, tmp_path_factory) -> Service:
    """The real Serve app (2 HTTP replicas, the consumer, render tasks) on a free port."""
    from ray import serve

    from actors.config.settings import load_settings
    from serve_app.app import build_app

    port = free_port()
    data_dir = tmp_path_factory.mktemp("service")
    base = f"http://127.0.0.1:{port}"
    values = base_settings(
        data_dir,
        warehouse,
        public_base_url=base,
        publish_timeout_seconds=2,
        reconcile_seconds=1,
        redrive_after_seconds=6,
        readiness_reuse_seconds=0,
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({**values, "api_replicas": 2}), name="catalog-report", route_prefix="/")
    yield Service(base, data_dir, load_settings(**values))
    serve.shutdown()
