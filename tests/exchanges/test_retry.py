"""The one retry vocabulary (exchanges.retry): Retry-After parsing, retries that follow the exception's
``retryable``/``retry_after``, and submissions retried only after a look-up found nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from exchanges.errors import AuthError, RateLimited, TemporaryError
from exchanges.retry import (
    Backoff,
    RetryPolicy,
    parse_retry_after,
    retry_after_seconds,
    submit_with_lookup,
    with_retries,
)

NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
QUICK = RetryPolicy(attempts=3, backoff=Backoff(initial_s=0.5, max_s=4, jitter=0))


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0),
    ("1.25", 1.25),                              # Discord sends fractions
    (" 3 ", 3.0),
    ("-4", 0.0),                                 # never negative
    ("Mon, 05 Jan 2026 12:00:30 GMT", 30.0),     # RFC 9110 HTTP-date
    ("Mon, 05 Jan 2026 11:59:00 GMT", 0.0),      # a date already past: go now
    ("soon", None),
    ("", None),
    (None, None),
    ("nan", None),
])
def test_parse_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_seconds_finds_the_header_whatever_its_case_or_shape() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert retry_after_seconds({"retry-after": ["5", "9"]}) == 5.0            # an SDK keeping header lists
    assert retry_after_seconds({"RETRY-AFTER": "bogus", "X-RateLimit-Reset-After": "0.5"},
                               "Retry-After", "X-RateLimit-Reset-After") == 0.5
    assert retry_after_seconds({}) is None


async def test_with_retries_waits_at_least_what_the_venue_asked_and_gives_up_after_the_attempts() -> None:
    sleeps, calls = Sleeps(), []

    async def call() -> str:
        calls.append(1)
        raise RateLimited("slow down", retry_after=3.0)

    with pytest.raises(RateLimited):
        await with_retries(call, QUICK, what="ticker", sleep=sleeps)
    assert len(calls) == 3
    assert sleeps.waits == [3.0, 3.0]  # max(backoff 0.5 then 1.0, retry_after 3)


async def test_with_retries_backs_off_by_doubling_and_never_retries_what_is_not_retryable() -> None:
    sleeps, outcomes = Sleeps(), [TemporaryError("reset"), TemporaryError("reset"), "ok"]

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await with_retries(flaky, QUICK, what="balances", sleep=sleeps) == "ok"
    assert sleeps.waits == [0.5, 1.0]

    async def refused() -> str:
        raise AuthError("bad key")

    with pytest.raises(AuthError):
        await with_retries(refused, QUICK, what="balances", sleep=sleeps)
    assert sleeps.waits == [0.5, 1.0]  # no wait added: not retried


async def test_a_lost_answer_is_looked_up_before_submitting_again() -> None:
    submits, lookups = [], []

    async def submit() -> str:
        submits.append(1)
        raise TemporaryError("timed out")

    async def look_up() -> str | None:
        lookups.append(1)
        return "existing order" if len(lookups) == 2 else None

    result = await submit_with_lookup(submit, look_up, QUICK, what="order", sleep=Sleeps())
    assert result == "existing order"
    assert (len(submits), len(lookups)) == (2, 2)


async def test_a_failed_look_up_is_not_a_licence_to_submit_again() -> None:
    submits = []

    async def submit() -> str:
        submits.append(1)
        raise TemporaryError("timed out")

    async def look_up() -> str | None:
        raise TemporaryError("the look-up timed out too")

    with pytest.raises(TemporaryError, match="look-up"):
        await submit_with_lookup(submit, look_up, QUICK, what="order", sleep=Sleeps())
    assert len(submits) == 1  # the order may exist: never sent twice blind


def test_backoff_stays_at_its_cap_after_any_number_of_failures() -> None:
    """A venue down for a day means thousands of reconnect attempts; the wait stays at the cap."""
    backoff = Backoff(initial_s=0.5, max_s=30.0, jitter=0.0)
    assert backoff.delay(10_000) == 30.0
    assert backoff.delay(1_100) == 30.0
