"""The Coinbase adapter against the fake Coinbase: orders, fills, idempotency and injected faults."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exchanges.base import OrderRequest, OrderStatus, OrderType, Side
from exchanges.coinbase import CoinbaseExchange
from exchanges.errors import (
    AuthError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    TemporaryError,
    UnknownPair,
)
from exchanges.retry import RetryPolicy
from tests.exchanges.fakes import FakeCoinbase, fast_settings

NO_RETRY = RetryPolicy(attempts=1)


def buy(cid: str, qty: str = "0.01", limit: str | None = None, pair: str = "BTC/USD") -> OrderRequest:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return OrderRequest(cid, pair, Side.BUY, kind, Decimal(qty), Decimal(limit) if limit else None)


def adapter(fake: FakeCoinbase, **overrides: object) -> CoinbaseExchange:
    return CoinbaseExchange(fake.key_name, fake.private_key_pem, rest_url=fake.rest_url, ws_url=fake.ws_url,
                            ws_user_url=fake.ws_user_url, **{**fast_settings(), **overrides})  # type: ignore[arg-type]


@pytest.fixture
async def funded(fake: FakeCoinbase) -> FakeCoinbase:
    fake.set_balance("USD", Decimal("10000"))
    await fake.set_price("BTC/USD", Decimal("30000"))
    return fake


async def test_market_order_fills_with_a_fee(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    order = await venue.place_order(buy("tc-cb-1"))
    assert order.status is OrderStatus.FILLED and order.avg_price == Decimal("30000")
    assert order.fee == Decimal("1.8")  # taker 0.6 % of 300
    balances = await venue.balances()
    assert balances["BTC"].total == Decimal("0.01") and balances["USD"].total == Decimal("9698.2")


async def test_limit_order_rests_holds_funds_and_fills_when_crossed(venue: CoinbaseExchange,
                                                                   funded: FakeCoinbase) -> None:
    order = await venue.place_order(buy("tc-cb-limit", limit="29000"))
    assert order.status is OrderStatus.SUBMITTED
    assert [o.client_order_id for o in await venue.open_orders("BTC/USD")] == ["tc-cb-limit"]
    usd = (await venue.balances())["USD"]
    assert usd.available < usd.total == Decimal("10000")
    await funded.set_price("BTC/USD", Decimal("28900"))
    done = await venue.fetch_order("BTC/USD", "tc-cb-limit")
    assert done is not None and done.status is OrderStatus.FILLED and done.fee == Decimal("1.16")  # maker 0.4 %


async def test_the_same_client_id_twice_is_one_order(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    first = await venue.place_order(buy("tc-cb-twice", limit="29000"))
    restarted = adapter(funded)
    second = await restarted.place_order(buy("tc-cb-twice", limit="29000"))
    await restarted.stop()
    assert second.venue_order_id == first.venue_order_id and len(funded.orders) == 1


async def test_a_lost_create_reply_does_not_duplicate_the_order(funded: FakeCoinbase) -> None:
    venue = adapter(funded, request_timeout_s=0.3)
    funded.inject("POST /orders", "accept_then_timeout", delay_s=0.8)
    order = await venue.place_order(buy("tc-cb-lost"))
    await venue.stop()
    assert len([o for o in funded.orders.values() if o["client_order_id"] == "tc-cb-lost"]) == 1
    assert funded.count("POST /orders") == 1 and order.status is OrderStatus.FILLED


async def test_a_create_that_never_arrived_is_resubmitted(funded: FakeCoinbase) -> None:
    venue = adapter(funded, request_timeout_s=0.3)
    funded.inject("POST /orders", "timeout", delay_s=0.8)
    order = await venue.place_order(buy("tc-cb-retry"))
    await venue.stop()
    assert funded.count("POST /orders") == 2 and len(funded.orders) == 1 and order.client_order_id == "tc-cb-retry"


async def test_refusals_are_typed_and_not_retried(venue: CoinbaseExchange, fake: FakeCoinbase) -> None:
    await fake.set_price("BTC/USD", Decimal("30000"))
    with pytest.raises(InsufficientFunds):
        await venue.place_order(buy("tc-cb-broke"))
    assert fake.count("POST /orders") == 1
    with pytest.raises(InvalidOrder):
        await venue.place_order(buy("tc-cb-small", qty="0.000000001"))
    with pytest.raises(UnknownPair):
        await venue.place_order(buy("tc-cb-nopair", pair="ETH/USD"))
    assert fake.count("POST /orders") == 1


async def test_http_429_is_rate_limited_with_retry_after(funded: FakeCoinbase) -> None:
    venue = adapter(funded, retry=NO_RETRY)
    funded.inject("GET /accounts", "http429", retry_after=0.4)
    with pytest.raises(RateLimited) as info:
        await venue.balances()
    await venue.stop()
    assert info.value.retry_after == 0.4


async def test_5xx_and_timeouts_on_queries_are_retried(funded: FakeCoinbase) -> None:
    venue = adapter(funded, request_timeout_s=0.3)
    funded.inject("GET /accounts", "http500", times=2)
    assert (await venue.balances())["USD"].total == Decimal("10000")
    funded.inject("GET /products/{product_id}/ticker", "timeout", delay_s=0.8)
    assert (await venue.ticker("BTC/USD")).last == Decimal("30000")
    funded.inject("GET /product_book", "http500", times=5)
    with pytest.raises(TemporaryError):
        await venue.order_book("BTC/USD")
    await venue.stop()
    assert funded.count("GET /accounts") == 3 and funded.count("GET /product_book") == 3


async def test_a_malformed_body_is_malformed_and_harmless(funded: FakeCoinbase) -> None:
    venue = adapter(funded, retry=NO_RETRY)
    await venue.start()
    funded.inject("GET /orders/historical/batch", "malformed")
    with pytest.raises(MalformedResponse):
        await venue.open_orders()
    assert await venue.open_orders() == []
    await venue.stop()


async def test_a_key_that_does_not_verify_is_an_auth_error(fake: FakeCoinbase) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    venue = CoinbaseExchange(fake.key_name, other, rest_url=fake.rest_url, **fast_settings())
    with pytest.raises(AuthError) as info:
        await venue.markets()
    await venue.stop()
    assert "401" in str(info.value) and other not in str(info.value)
    assert fake.count("GET /products") == 1


async def test_jwts_reaching_the_venue_have_the_expected_claims(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    await venue.balances()
    seen = funded.seen_jwts[-1]
    assert seen["header"]["kid"] == funded.key_name and seen["claims"]["iss"] == "cdp"
    assert seen["claims"]["uri"] == f"GET 127.0.0.1:{funded.port}/api/v3/brokerage/accounts"
    assert seen["claims"]["exp"] - seen["claims"]["nbf"] == 120


async def test_partial_fills_each_carry_their_fee(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    await venue.place_order(buy("tc-cb-parts", qty="0.02", limit="29500"))
    await funded.fill("tc-cb-parts", Decimal("0.005"))
    part = await venue.fetch_order("BTC/USD", "tc-cb-parts")
    assert part is not None and part.status is OrderStatus.PARTIALLY_FILLED and part.filled_qty == Decimal("0.005")
    await funded.fill("tc-cb-parts", Decimal("0.015"))
    page = await venue.fills_since(None)
    done = await venue.fetch_order("BTC/USD", "tc-cb-parts")
    assert done is not None and done.status is OrderStatus.FILLED
    assert [f.qty for f in page.fills] == [Decimal("0.005"), Decimal("0.015")]
    assert all(f.client_order_id == "tc-cb-parts" for f in page.fills)
    assert sum(f.fee for f in page.fills) == done.fee
    assert (await venue.fills_since(page.cursor)).fills == []


async def test_fills_since_follows_pages_and_never_repeats(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    await venue.place_order(buy("tc-cb-many", qty="0.13", limit="29500"))
    for _ in range(130):
        await funded.fill("tc-cb-many", Decimal("0.001"))
    page = await venue.fills_since(None)
    assert len(page.fills) == 130 and len({f.fill_id for f in page.fills}) == 130
    assert [f.ts for f in page.fills] == sorted(f.ts for f in page.fills)
    await funded.set_price("BTC/USD", Decimal("30000"))
    await venue.place_order(buy("tc-cb-next"))
    later = await venue.fills_since(page.cursor)
    assert [f.client_order_id for f in later.fills] == ["tc-cb-next"]


async def test_cancel(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    await venue.place_order(buy("tc-cb-cancel", limit="29000"))
    assert (await venue.cancel_order("BTC/USD", "tc-cb-cancel")).status is OrderStatus.CANCELLED
    assert (await venue.cancel_order("BTC/USD", "tc-cb-cancel")).status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFound):
        await venue.cancel_order("BTC/USD", "tc-cb-ghost")
    restarted = adapter(funded)
    found = await restarted.fetch_order("BTC/USD", "tc-cb-cancel")  # found by scanning, not from memory
    await restarted.stop()
    assert found is not None and found.status is OrderStatus.CANCELLED


async def test_preflight(venue: CoinbaseExchange, funded: FakeCoinbase) -> None:
    checks = {c.name: c for c in await venue.preflight(["BTC/USD", "ETH/USD"])}
    assert all(checks[n].ok for n in ("api key", "no transfer permission", "clock skew", "balances",
                                      "minimum order BTC/USD"))
    assert not checks["minimum order ETH/USD"].ok


async def test_preflight_refuses_a_key_that_can_transfer_and_a_skewed_clock() -> None:
    async with FakeCoinbase(can_transfer=True) as fake:
        fake.server_time_offset_s = -20
        venue = adapter(fake)
        checks = {c.name: c for c in await venue.preflight([])}
        await venue.stop()
    assert not checks["no transfer permission"].ok and "transfer" in checks["no transfer permission"].detail
    assert not checks["clock skew"].ok and "-20" in checks["clock skew"].detail


async def test_the_adapter_is_an_exchange(venue: CoinbaseExchange) -> None:
    from exchanges.base import Exchange

    assert isinstance(venue, Exchange)
    assert set(venue.capabilities.timeframes_s) >= {60, 300, 3600, 86400}


async def test_an_order_refusal_keeps_the_venues_words_as_its_cause(venue: CoinbaseExchange,
                                                                   fake: FakeCoinbase) -> None:
    await fake.set_price("BTC/USD", Decimal("30000"))
    with pytest.raises(InsufficientFunds) as info:
        await venue.place_order(buy("tc-cb-cause"))
    assert "INSUFFICIENT_FUND" in str(info.value) and info.value.__cause__ is not None
