"""The limits (issue 11): report requests per institution hold across a kill -9 of the limiter,
with the ledger or a durable store behind it."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.serve_app.test_http_api import GOOD, assert_error


def own_processes(title: bytes) -> list[int]:
    """Pids of this test process's descendants whose command line starts with ``title`` (the Ray
    worker of an actor is named ``ray::<Class>``): other Rays on the machine are never touched."""

    def ancestors(pid: int):
        while pid > 1:
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError):
                return
            yield pid

    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if not cmdline.read_bytes().startswith(title):
                continue
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if os.getpid() in ancestors(pid):
            found.append(pid)
    return found


def test_report_limit_holds_across_a_kill_9_of_the_limiter(service):
    """30 requests, SIGKILL of the limiter actor, then requests until refused: 60 accepted in
    the minute, however the restart fell (answers while it restarts are 503s, never 200s)."""
    token = service.token(institution_id=21)
    started = time.monotonic()
    # Each request asks for another school: identical ones in flight would share one job, uncounted.
    asked = iter(range(1, 1000))
    first = [service.request_report(token, **GOOD, school_ids=str(next(asked))).status_code for _ in range(30)]
    assert first == [200] * 30
    [limiter] = own_processes(b"ray::RateLimiter")
    os.kill(limiter, signal.SIGKILL)
    after: list[int] = []
    while after.count(429) < 3 and time.monotonic() - started < 50:
        after.append(service.request_report(token, **GOOD, school_ids=str(next(asked))).status_code)
    assert time.monotonic() - started < 50, "the limiter did not come back in time"
    assert set(after) <= {200, 429, 503}
    assert first.count(200) + after.count(200) == 60, after
    assert own_processes(b"ray::RateLimiter") != [limiter]


def test_a_durable_store_keeps_the_counts_for_a_new_limiter(ray_session, settings_factory, tmp_path):
    """REPORTS_RATE_LIMIT_STORAGE_URL=redis://…: a limiter started after another one died sees
    what that one counted (Redis on 127.0.0.1:6379, shared with nothing else of the tests)."""
    import ray
    import redis

    from serve_app.ratelimit import RateLimiter

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379 (.ci/run starts one)")
    settings = settings_factory(tmp_path, rate_limit_per_minute=3, rate_limit_storage_url="redis://127.0.0.1:6379/0")
    institution = str(random.randrange(10**9, 10**10))  # the store outlives test runs
    first = RateLimiter.remote(settings.model_dump(mode="json"))
    assert ray.get([first.hit.remote(institution) for _ in range(3)]) == [0.0, 0.0, 0.0]
    ray.kill(first)
    second = RateLimiter.remote(settings.model_dump(mode="json"))
    wait = ray.get(second.hit.remote(institution))
    assert 50 < wait <= 60
    ray.kill(second)


def test_an_unknown_rate_limit_store_fails_at_start(settings_factory, tmp_path):
    from actors.config.settings import ConfigError

    with pytest.raises(ConfigError, match="REPORTS_RATE_LIMIT_STORAGE_URL"):
        settings_factory(tmp_path, rate_limit_storage_url="postgres://127.0.0.1/x")


def test_one_token_in_bulk_gets_its_share_of_the_proxy_and_no_more(service):
    """100 polls at once from one token: those past its share are refused at once (429, JSON,
    Retry-After) before they reach a replica, while another tenant's polls meanwhile all pass."""
    import asyncio

    import httpx

    url = service.base_url + "/institution/reports/jobs/no-such-job"  # 404 once authenticated
    flooder, other = service.token(institution_id=22), service.token(institution_id=23)

    async def go() -> tuple[list[httpx.Response], list[int]]:
        limits = httpx.Limits(max_connections=120, max_keepalive_connections=120)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:

            async def poll(token: str) -> httpx.Response:
                return await client.get(url, headers={"Authorization": f"Bearer {token}"})

            async def meanwhile() -> list[int]:
                return [(await poll(other)).status_code for _ in range(5)]

            flood, calm = await asyncio.gather(asyncio.gather(*(poll(flooder) for _ in range(100))), meanwhile())
            return list(flood), calm

    flood, calm = asyncio.run(go())
    assert calm == [404] * 5
    assert {r.status_code for r in flood} == {404, 429}
    for refused in (r for r in flood if r.status_code == 429):
        assert_error(refused, 429, "resource_exhausted")
        assert refused.headers["retry-after"] == "1"


def test_status_polls_have_a_budget_per_institution_and_health_is_never_shed(service, tmp_path):
    """An app with a budget of 5 polls a minute and room for 1 request at a time: the 6th poll of
    one institution is 429 (others still pass); /healthz stays 200 while polls are shed."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from ray import serve

    from serve_app.app import build_app
    from tests.conftest import base_settings

    values = base_settings(
        tmp_path,
        service.settings.warehouse_url.removeprefix("duckdb://"),
        read_limit_per_minute=5,
        max_in_flight=1,
        render_workers=1,
    )
    serve.run(build_app(values), name="reads", route_prefix="/reads")
    try:
        url = service.base_url + "/reads/institution/reports/jobs/no-such-job"

        def poll(institution: int) -> httpx.Response:
            token = service.token(institution_id=institution)
            return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

        assert [poll(24).status_code for _ in range(5)] == [404] * 5
        refused = assert_error(poll(24), 429, "resource_exhausted")
        assert "per minute" in refused["message"]
        assert poll(25).status_code == 404

        health, shed = [], set()
        with ThreadPoolExecutor(40) as pool:
            for burst in range(10):
                checks = [pool.submit(httpx.get, service.base_url + "/reads/healthz", timeout=30) for _ in range(8)]
                shed |= {r.status_code for r in pool.map(poll, range(1000 + 32 * burst, 1032 + 32 * burst))}
                health += [c.result().status_code for c in checks]
                if 503 in shed:
                    break
        assert 503 in shed and set(health) == {200}
    finally:
        serve.delete("reads")
