"""ccxt's exception tree arrives as the project's own errors, raised from the original, and retries
follow the type: through the fake Kraken, a rate limit or a 502 is retried, a bad key is not."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from exchanges.ccxt._lib import ccxt
from exchanges.ccxt.errors import call, translate
from exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    TemporaryError,
    UnknownPair,
)
from tests.exchanges.ccxt.harness import ccxt_for, ccxt_venue
from tests.exchanges.fakes import FakeKraken

CASES = [
    ("RateLimitExceeded", RateLimited), ("DDoSProtection", RateLimited), ("RequestTimeout", TemporaryError),
    ("ExchangeNotAvailable", TemporaryError), ("OnMaintenance", TemporaryError), ("InvalidNonce", TemporaryError),
    ("NetworkError", TemporaryError), ("BadResponse", MalformedResponse), ("NullResponse", MalformedResponse),
    ("AuthenticationError", AuthError), ("PermissionDenied", AuthError), ("AccountSuspended", AuthError),
    ("InsufficientFunds", InsufficientFunds), ("OrderNotFound", OrderNotFound), ("BadSymbol", UnknownPair),
    ("InvalidOrder", InvalidOrder), ("DuplicateOrderId", InvalidOrder), ("BadRequest", ExchangeError),
    ("ArgumentsRequired", ExchangeError), ("NotSupported", ExchangeError), ("ExchangeError", ExchangeError),
]


@pytest.mark.parametrize(("name", "ours"), CASES)
async def test_each_ccxt_error_becomes_the_documented_type_raised_from_the_original(name: str, ours: type) -> None:
    original = getattr(ccxt, name)(f"kraken says {name}")

    async def failing() -> None:
        raise original

    with pytest.raises(ExchangeError) as info:
        await call(failing())
    assert type(info.value) is ours and info.value.__cause__ is original
    assert "kraken says" in str(info.value)
    # the subclasses ccxt nests under a different meaning are not mistaken for their parents
    assert info.value.retryable == issubclass(ours, TemporaryError)


def test_a_rate_limit_carries_the_venues_retry_after() -> None:
    err = translate(ccxt.RateLimitExceeded("slow down"), headers={"retry-after": "7"})
    assert isinstance(err, RateLimited) and err.retry_after == 7


async def test_rate_limits_and_bad_gateways_are_retried_and_succeed() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        market.set_balance("USD", Decimal(5))
        market.fake.inject("BalanceEx", "rate_limit")
        market.fake.inject("BalanceEx", "http500")
        assert (await venue.balances())["USD"].total == 5
        assert market.fake.count("BalanceEx") == 3


async def test_a_bad_key_is_an_auth_error_and_is_not_retried() -> None:
    async with FakeKraken() as fake:
        venue = ccxt_for(fake)
        fake.api_key = "another-key"  # the venue no longer knows the adapter's key
        try:
            with pytest.raises(AuthError):
                await venue.balances()
            assert fake.count("BalanceEx") == 1
            # ccxt 4.5 has no entry for Kraken's "EAPI:Invalid signature": a plain ExchangeError, still not retried
            fake.api_key = venue.ex.apiKey
            fake.api_secret = base64.b64encode(b"x" * 64).decode()
            with pytest.raises(ExchangeError, match="Invalid signature") as info:
                await venue.balances()
            assert not info.value.retryable and fake.count("BalanceEx") == 2
        finally:
            await venue.stop()


async def test_ccxt_spaces_requests_by_the_venues_rate_limit() -> None:
    import time

    async with FakeKraken() as fake:
        for spacing_ms, at_least, at_most in ((200, 0.35, None), (1, 0, 0.3)):
            venue = ccxt_for(fake, rate_limit_ms=spacing_ms)
            try:
                await venue.markets()  # two requests (Assets, AssetPairs)
                started = time.monotonic()
                for _ in range(2):
                    await venue.ex.fetch_time()
                took = time.monotonic() - started
                assert took >= at_least and (at_most is None or took <= at_most), (spacing_ms, took)
            finally:
                await venue.stop()
