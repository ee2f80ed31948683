"""Kraken's API counter mirrored locally, and Kraken's error strings translated at the edge."""

from __future__ import annotations

import pytest

from exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    RateLimited,
    TemporaryError,
    UnknownPair,
)
from exchanges.kraken._errors import InvalidNonce, translate
from exchanges.kraken.ratelimit import TIERS, DecayCounter, call_cost


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


async def test_counter_waits_once_the_tier_maximum_is_reached() -> None:
    clock = FakeTime()
    counter = DecayCounter(TIERS["starter"], monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(15):
        await counter.acquire(1)
    assert clock.slept == []
    await counter.acquire(2)  # 15 + 2 > 15: wait until 2 units decayed at 0.33/s
    assert clock.slept and sum(clock.slept) == pytest.approx(2 / 0.33, rel=1e-6)


async def test_counter_decays_with_time_and_orders_cost_nothing() -> None:
    clock = FakeTime()
    counter = DecayCounter(TIERS["pro"], monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(20):
        await counter.acquire(1)
    clock.t += 5
    assert counter.count == pytest.approx(15)
    await counter.acquire(call_cost("AddOrder"))
    assert counter.count == pytest.approx(15) and clock.slept == []


def test_costs_follow_krakens_rules() -> None:
    assert call_cost("TradesHistory") == 2 and call_cost("QueryTrades") == 2 and call_cost("Ledgers") == 2
    assert call_cost("BalanceEx") == 1 and call_cost("OpenOrders") == 1
    assert call_cost("AddOrder") == 0 and call_cost("CancelOrder") == 0


async def test_being_told_off_saturates_the_counter() -> None:
    clock = FakeTime()
    counter = DecayCounter(TIERS["intermediate"], monotonic=clock.monotonic, sleep=clock.sleep)
    wait = counter.saturate()
    assert wait == pytest.approx(1 / 0.5)


@pytest.mark.parametrize(("message", "kind"), [
    ("EAPI:Rate limit exceeded", RateLimited),
    ("EOrder:Rate limit exceeded", RateLimited),
    ("EGeneral:Temporary lockout", RateLimited),
    ("EService:Unavailable", TemporaryError),
    ("EService:Busy", TemporaryError),
    ("EGeneral:Invalid arguments", InvalidOrder),
    ("EGeneral:Invalid arguments:volume minimum not met", InvalidOrder),
    ("EOrder:Insufficient funds", InsufficientFunds),
    ("EAPI:Invalid key", AuthError),
    ("EAPI:Invalid signature", AuthError),
    ("EAPI:Invalid nonce", InvalidNonce),  # an AuthError the REST client resyncs and retries once
    ("EGeneral:Permission denied", AuthError),
    ("EQuery:Unknown asset pair", UnknownPair),
    ("EOrder:Unknown order", OrderNotFound),
    ("EFunding:Unknown withdraw key", ExchangeError),
])
def test_error_strings_map_to_the_hierarchy(message: str, kind: type[Exception]) -> None:
    error = translate([message], "Kraken AddOrder", retry_after=1.5)
    assert type(error) is kind
    assert isinstance(error, ExchangeError)
    assert message in str(error) and "Kraken AddOrder" in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 1.5
