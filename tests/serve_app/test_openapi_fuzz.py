"""schemathesis against /openapi.json of the running service: whatever it sends, no 5xx other
than a deliberate 503, and every error is an Encore-shaped JSON body.

Driven through schemathesis' Hypothesis strategies (its pytest fixture loader does not run
under pytest 9)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings


def test_no_server_errors_and_json_errors_only(service):
    schema = schemathesis.openapi.from_url(service.base_url + "/openapi.json")
    # An institution with no courses: accepted requests make tiny jobs.
    auth = {"Authorization": f"Bearer {service.token(institution_id=6, ttl=3600)}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    seen: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def check(case):
            response = case.call(headers=auth, timeout=30)
            seen.setdefault(operation.label, set()).add(response.status_code)
            assert response.status_code < 500 or response.status_code == 503, response.text
            if response.status_code >= 400:
                content_type = response.headers.get("content-type") or [""]  # schemathesis: lists
                assert content_type[0].startswith("application/json"), response.text
                body = response.json()
                assert set(body) == {"code", "message", "details"} and body["details"] is None

        check()
    assert 200 in seen["GET /institution/reports/catalog"], seen
