"""The notification API client against a real local HTTP server with faults."""

from __future__ import annotations

import threading
import time

import pytest

from actors.notify import Notification, NotificationRejected, NotifyOptions
from actors.notify.http import HttpNotifier
from tests.support.notify_server import NotificationAPI


@pytest.fixture
def api():
    server = NotificationAPI()
    yield server
    server.stop()


def note(job_id="job-1") -> Notification:
    return Notification(
        status="done",
        job_id=job_id,
        user_id=7,
        institution_id=1,
        subdomain="demo",
        url="https://files/x.xlsx",
        file_name="catalogo_2025-01-01_2025-12-31.xlsx",
        rows=3,
    )


def client(api, **kw) -> HttpNotifier:
    return HttpNotifier(
        api.url,
        NotifyOptions(
            token=kw.pop("token", "svc-token"),
            timeout_seconds=kw.pop("timeout", 1.0),
            attempts=kw.pop("attempts", 8),
            max_wait_seconds=kw.pop("max_wait", 0.5),
        ),
    )


def test_payload_and_headers(api):
    client(api).send(note())
    [req] = api.delivered
    assert req["headers"]["idempotency-key"] == "job-1"
    assert req["headers"]["authorization"] == "Bearer svc-token"
    assert req["body"] == {
        "typeReport": "catalog",
        "status": "done",
        "jobId": "job-1",
        "userId": 7,
        "institutionId": 1,
        "subdomain": "demo",
        "url": "https://files/x.xlsx",
        "expiresAt": None,
        "fileName": "catalogo_2025-01-01_2025-12-31.xlsx",
        "rows": 3,
        "error": None,
    }


def test_5xx_is_retried_until_the_api_recovers(api):
    api.fail_for(1.5, 503)
    started = time.monotonic()
    client(api).send(note())
    assert len(api.delivered) == 1 and len(api.received) >= 3
    assert time.monotonic() - started >= 1.4


def test_4xx_is_final(api):
    api.fail_for(60, 422)
    with pytest.raises(NotificationRejected):
        client(api).send(note())
    assert len(api.received) == 1


def test_a_hanging_api_times_out_and_is_retried(api):
    api.hang_next = 1
    client(api, timeout=0.5).send(note())
    assert len(api.received) == 2 and len(api.delivered) == 1


def test_refused_connections_are_retried_until_it_listens(api):
    api.stop()
    threading.Timer(1.0, api.start).start()
    client(api).send(note())
    assert len(api.delivered) == 1


def test_gives_up_after_its_attempts(api):
    api.fail_for(60, 500)
    with pytest.raises(Exception, match="500"):
        client(api, attempts=3).send(note())
    assert len(api.received) == 3
