"""Every sender reads a platform's "slow down" the same way (bot.notify.senders.retry_after)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.notify.senders import json_body, retry_after


def test_discords_body_value_is_preferred_to_its_rounded_header() -> None:
    resp = httpx.Response(429, json={"retry_after": 0.25, "global": False}, headers={"Retry-After": "1"})
    assert retry_after(resp.headers, json_body(resp)) == 0.25


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "3"}, 3.0),
    ({"retry-after": "1.5"}, 1.5),  # any case
    ({"X-RateLimit-Reset-After": "0.75"}, 0.75),  # Discord's bucket header alone
    ({"Retry-After": ["7"]}, 7.0),  # slack-sdk may keep header values as lists
    ({"Retry-After": "-4"}, 0.0),  # never negative
    ({"Retry-After": "soon"}, 1.0),  # unreadable: the default
    ({}, 1.0),
])
def test_headers(headers: dict[str, object], expected: float) -> None:
    assert retry_after(headers) == expected


def test_an_http_date_is_read_as_the_seconds_until_it() -> None:
    # before, a date was unreadable and the sender waited one second whatever the platform asked
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < retry_after({"Retry-After": later}) <= 120


def test_a_body_that_is_not_json_falls_back_to_the_headers() -> None:
    resp = httpx.Response(429, text="<html>slow down</html>", headers={"Retry-After": "2"})
    assert json_body(resp) is None
    assert retry_after(resp.headers, json_body(resp)) == 2.0
