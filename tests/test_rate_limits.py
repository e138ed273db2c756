"""The limits (issue 11): report requests per institution hold across a kill -9 of the limiter,
with the ledger or a durable store behind it."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.test_http_api import GOOD, assert_error


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
    first = [service.request_report(token, **GOOD).status_code for _ in range(30)]
    assert first == [200] * 30
    [limiter] = own_processes(b"ray::RateLimiter")
    os.kill(limiter, signal.SIGKILL)
    after: list[int] = []
    while after.count(429) < 3 and time.monotonic() - started < 50:
        after.append(service.request_report(token, **GOOD).status_code)
    assert time.monotonic() - started < 50, "the limiter did not come back in time"
    assert set(after) <= {200, 429, 503}
    assert first.count(200) + after.count(200) == 60, after
    assert own_processes(b"ray::RateLimiter") != [limiter]


def test_a_durable_store_keeps_the_counts_for_a_new_limiter(ray_session, settings_factory, tmp_path):
    """REPORTS_RATE_LIMIT_STORAGE_URL=redis://…: a limiter started after another one died sees
    what that one counted (Redis on 127.0.0.1:6379, shared with nothing else of the tests)."""
    import ray

    from serve_app.ratelimit import RateLimiter

    settings = settings_factory(tmp_path, rate_limit_per_minute=3,
                                rate_limit_storage_url="redis://127.0.0.1:6379/0")
    institution = str(random.randrange(10**9, 10**10))  # the store outlives test runs
    first = RateLimiter.remote(settings.model_dump(mode="json"))
    assert ray.get([first.hit.remote(institution) for _ in range(3)]) == [0.0, 0.0, 0.0]
    ray.kill(first)
    second = RateLimiter.remote(settings.model_dump(mode="json"))
    wait = ray.get(second.hit.remote(institution))
    assert 50 < wait <= 60
    ray.kill(second)


def test_an_unknown_rate_limit_store_fails_at_start(settings_factory, tmp_path):
    from actors.settings import ConfigError

    with pytest.raises(ConfigError, match="REPORTS_RATE_LIMIT_STORAGE_URL"):
        settings_factory(tmp_path, rate_limit_storage_url="postgres://127.0.0.1/x")
