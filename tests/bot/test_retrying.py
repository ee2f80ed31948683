"""The delays of the chat layer's never-ending loops (reconnects, alert delivery, a reply Telegram
has not taken yet): doubling up to a maximum, back to the start after a success."""

from __future__ import annotations

from bot.retrying import Escalating
from exchanges.retry import Backoff


def test_doubles_up_to_the_maximum_and_starts_again_after_a_success() -> None:
    retries = Escalating(Backoff(initial_s=1.0, max_s=10.0, jitter=0))
    assert [retries.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    retries.reset()
    assert retries.next() == 1.0


def test_a_refusal_only_configuration_can_fix_waits_the_longest_from_then_on() -> None:
    retries = Escalating(Backoff(initial_s=1.0, max_s=60.0, jitter=0))
    assert retries.next() == 1.0
    assert retries.longest() == 60.0
    assert retries.next() == 60.0


def test_free_failures_wait_nothing_first() -> None:
    retries = Escalating(Backoff(initial_s=5.0, max_s=60.0, jitter=0), free=1)
    assert [retries.next() for _ in range(4)] == [0.0, 5.0, 10.0, 20.0]


def test_a_day_of_failures_keeps_waiting_the_maximum() -> None:
    # one failure a minute for a day: the doubling must not overflow
    retries = Escalating(Backoff(initial_s=0.5, max_s=30.0, jitter=0))
    assert {retries.next() for _ in range(1440)} >= {30.0}
    assert retries.next() == 30.0
