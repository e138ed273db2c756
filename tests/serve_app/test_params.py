"""Query parameters → ReportRequest (serve_app/params.py), with SPEC §2's messages; no Serve."""

from __future__ import annotations

from datetime import date

import pytest

from actors.job.state import Status
from serve_app.errors import ApiError
from serve_app.params import Listing, cursor_for, parse, parse_listing

GOOD = {"start_date": "2025-01-01", "end_date": "2025-12-31"}


def call(start_date=None, end_date=None, school_ids=None):
    return parse(start_date, end_date, school_ids)


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "start_date is required"),
        ({"start_date": "2025-01-01"}, "end_date is required"),
        ({"start_date": "2025-02-30", "end_date": "2025-03-01"}, "start_date is not a valid date"),
        ({"start_date": "01/02/2025", "end_date": "2025-03-01"}, "start_date must be an ISO date"),
        ({"start_date": "2025-01-01T00:00", "end_date": "2025-03-01"}, "start_date must be an ISO date"),
        ({"start_date": "२०२५-01-01", "end_date": "2025-03-01"}, "start_date must be an ISO date"),
        ({"start_date": "2025-03-02", "end_date": "2025-03-01"}, "start_date must be before or equal to end_date"),
        ({"start_date": "1899-12-31", "end_date": "2025-03-01"}, "start_date must be between"),
        ({**GOOD, "school_ids": ""}, "school_ids"),
        ({**GOOD, "school_ids": "1,,2"}, "school_ids"),
        ({**GOOD, "school_ids": "1, 2"}, "school_ids"),
        ({**GOOD, "school_ids": "0"}, "school_ids"),
        ({**GOOD, "school_ids": "-3"}, "school_ids"),
        ({**GOOD, "school_ids": "abc"}, "school_ids"),
        ({**GOOD, "school_ids": "²"}, "school_ids"),
        ({**GOOD, "school_ids": str(2**63)}, "school_ids"),
        ({**GOOD, "school_ids": ",".join(str(i) for i in range(1, 1002))}, "at most 1000"),
    ],
)
def test_bad_parameters_say_what_is_wrong(params, message):
    with pytest.raises(ApiError) as caught:
        call(**params)
    assert caught.value.status == 400 and message in caught.value.message


def test_limits_that_are_fine():
    wide = call(**GOOD, school_ids=",".join(["9223372036854775807"] * 1000))
    assert wide.school_ids == [2**63 - 1]
    one_day = call(start_date="2025-01-01", end_date="2025-01-01")
    assert one_day.start_date == one_day.end_date == date(2025, 1, 1) and one_day.school_ids is None


def test_school_ids_are_deduplicated_and_sorted():
    assert call(**GOOD, school_ids="12,10,10").school_ids == [10, 12]


@pytest.mark.parametrize(
    "status, limit, cursor, message",
    [
        ("finished", None, None, "status must be one of"),
        (None, "0", None, "limit must be"),
        (None, "101", None, "limit must be"),
        (None, "ten", None, "limit must be"),
        (None, "1e2", None, "limit must be"),
        (None, None, "not-base64!", "cursor"),
        (None, None, cursor_for("../../jobs/x"), "cursor"),
    ],
)
def test_bad_listing_parameters_say_what_is_wrong(status, limit, cursor, message):
    with pytest.raises(ApiError) as caught:
        parse_listing(status, limit, cursor)
    assert caught.value.status == 400 and message in caught.value.message


def test_listing_defaults_and_cursor_round_trip():
    assert parse_listing(None, None, None) == Listing(None, 20, None)
    entry = "8203981234567-01JOBID"
    assert parse_listing("done", "100", cursor_for(entry)) == Listing(Status.done, 100, entry)
