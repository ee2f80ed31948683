"""The Kraken adapter against the fake Kraken: orders, fills, idempotency and injected faults."""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal

import pytest

from exchanges.base import OrderRequest, OrderStatus, OrderType, Side
from exchanges.errors import (
    AuthError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    TemporaryError,
)
from exchanges.kraken import KrakenExchange, NonceSource
from exchanges.retry import RetryPolicy
from tests.exchanges.fakes import UNTHROTTLED, FakeKraken, fast_settings

NO_RETRY = RetryPolicy(attempts=1)


def buy(cid: str, qty: str = "0.01", limit: str | None = None) -> OrderRequest:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return OrderRequest(cid, "BTC/USD", Side.BUY, kind, Decimal(qty), Decimal(limit) if limit else None)


def adapter(fake: FakeKraken, **overrides: object) -> KrakenExchange:
    options = {**fast_settings(), "tier": UNTHROTTLED, **overrides}
    return KrakenExchange(fake.api_key, fake.api_secret, rest_url=fake.rest_url, ws_url=fake.ws_url,
                          ws_auth_url=fake.ws_auth_url, **options)  # type: ignore[arg-type]


@pytest.fixture
async def funded(fake: FakeKraken) -> FakeKraken:
    fake.set_balance("USD", Decimal("10000"))
    await fake.set_price("BTC/USD", Decimal("30000"))
    return fake


async def test_market_order_fills_at_the_price_with_a_taker_fee(venue: KrakenExchange, funded: FakeKraken) -> None:
    order = await venue.place_order(buy("tc-market-1"))
    assert order.status is OrderStatus.FILLED and order.client_order_id == "tc-market-1"
    assert order.avg_price == Decimal("30000") and order.filled_qty == Decimal("0.01")
    assert order.fee == Decimal("0.78")  # 300 USD * 0.26 %
    balances = await venue.balances()
    assert balances["BTC"].total == Decimal("0.01") and balances["USD"].total == Decimal("9699.22")


async def test_limit_order_rests_then_fills_when_the_price_crosses(venue: KrakenExchange, funded: FakeKraken) -> None:
    order = await venue.place_order(buy("tc-limit-1", limit="29000"))
    assert order.status is OrderStatus.SUBMITTED and order.limit_price == Decimal("29000")
    assert [o.client_order_id for o in await venue.open_orders("BTC/USD")] == ["tc-limit-1"]
    assert (await venue.balances())["USD"].available < Decimal("10000")  # held by the order
    await funded.set_price("BTC/USD", Decimal("28990"))
    filled = await venue.fetch_order("BTC/USD", "tc-limit-1")
    assert filled is not None and filled.status is OrderStatus.FILLED and filled.avg_price == Decimal("29000")
    assert filled.fee == Decimal("0.464")  # maker 0.16 % of 290
    assert await venue.open_orders() == []


async def test_placing_the_same_client_id_twice_returns_the_first_order(venue: KrakenExchange,
                                                                      funded: FakeKraken) -> None:
    first = await venue.place_order(buy("tc-twice", limit="29000"))
    fresh = adapter(funded)  # a restarted process knows nothing locally
    second = await fresh.place_order(buy("tc-twice", limit="29000"))
    await fresh.stop()
    assert second.venue_order_id == first.venue_order_id
    assert funded.count("AddOrder") == 1 and len(funded.orders) == 1


async def test_a_lost_add_order_reply_does_not_duplicate_the_order(funded: FakeKraken) -> None:
    venue = adapter(funded, request_timeout_s=0.3)
    funded.inject("AddOrder", "accept_then_timeout", delay_s=0.8)  # accepted, but the reply never arrives
    order = await venue.place_order(buy("tc-lost-reply"))
    await venue.stop()
    matching = [o for o in funded.orders.values() if o.get("cl_ord_id") == "tc-lost-reply"]
    assert len(matching) == 1 and funded.count("AddOrder") == 1
    assert order.venue_order_id in funded.orders and order.status is OrderStatus.FILLED


async def test_an_add_order_that_never_arrived_is_resubmitted_once(funded: FakeKraken) -> None:
    venue = adapter(funded, request_timeout_s=0.3)
    funded.inject("AddOrder", "timeout", delay_s=0.8)  # not processed
    order = await venue.place_order(buy("tc-not-arrived"))
    await venue.stop()
    assert funded.count("AddOrder") == 2 and len(funded.orders) == 1
    assert order.client_order_id == "tc-not-arrived"


async def test_add_order_refusals_are_not_retried(venue: KrakenExchange, fake: FakeKraken) -> None:
    await fake.set_price("BTC/USD", Decimal("30000"))
    with pytest.raises(InsufficientFunds):
        await venue.place_order(buy("tc-broke"))
    assert fake.count("AddOrder") == 1
    with pytest.raises(InvalidOrder):
        await venue.place_order(buy("tc-tiny", qty="0.00001"))  # below ordermin, refused before sending
    assert fake.count("AddOrder") == 1


async def test_http_429_is_rate_limited_with_retry_after(fake: FakeKraken) -> None:
    venue = adapter(fake, retry=NO_RETRY)
    fake.inject("AssetPairs", "http429", retry_after=0.25)
    with pytest.raises(RateLimited) as info:
        await venue.markets()
    await venue.stop()
    assert info.value.retry_after == 0.25


async def test_krakens_rate_limit_error_is_rate_limited(funded: FakeKraken) -> None:
    venue = adapter(funded, retry=NO_RETRY)
    funded.inject("BalanceEx", "rate_limit")
    with pytest.raises(RateLimited) as info:
        await venue.balances()
    await venue.stop()
    assert info.value.retry_after is not None and info.value.retry_after > 0
    assert isinstance(info.value.__cause__, Exception)


async def test_5xx_on_a_query_is_retried_until_it_succeeds(venue: KrakenExchange, funded: FakeKraken) -> None:
    funded.inject("BalanceEx", "http500", times=2)
    assert (await venue.balances())["USD"].total == Decimal("10000")
    assert funded.count("BalanceEx") == 3


async def test_5xx_that_persists_is_a_temporary_error(venue: KrakenExchange, funded: FakeKraken) -> None:
    funded.inject("Ticker", "http500", times=5)
    with pytest.raises(TemporaryError):
        await venue.ticker("BTC/USD")
    assert funded.count("Ticker") == 3  # the configured attempts, no more


async def test_a_timeout_on_public_data_is_retried(funded: FakeKraken) -> None:
    venue = adapter(funded, request_timeout_s=0.3)
    funded.inject("Ticker", "timeout", delay_s=0.8)
    ticker = await venue.ticker("BTC/USD")
    await venue.stop()
    assert ticker.last == Decimal("30000") and funded.count("Ticker") == 2


async def test_a_malformed_body_is_a_malformed_response_and_the_next_call_works(funded: FakeKraken) -> None:
    venue = adapter(funded, retry=NO_RETRY)
    await venue.start()
    funded.inject("Ticker", "malformed")
    with pytest.raises(MalformedResponse):
        await venue.ticker("BTC/USD")
    assert (await venue.ticker("BTC/USD")).bid == Decimal("30000")
    await venue.stop()


async def test_a_wrong_secret_is_an_auth_error_that_does_not_leak_it(fake: FakeKraken) -> None:
    wrong = base64.b64encode(b"w" * 64).decode()
    venue = KrakenExchange(fake.api_key, wrong, rest_url=fake.rest_url, **fast_settings())
    with pytest.raises(AuthError) as info:
        await venue.balances()
    await venue.stop()
    assert "EAPI:Invalid signature" in str(info.value)
    assert wrong not in str(info.value) and fake.api_key not in str(info.value)
    assert fake.count("BalanceEx") == 1  # auth errors are not retried


async def test_concurrent_private_calls_keep_nonces_in_order(venue: KrakenExchange, funded: FakeKraken) -> None:
    results = await asyncio.gather(*(venue.balances() for _ in range(12)))
    assert all(r["USD"].total == Decimal("10000") for r in results)


async def test_nonces_can_be_persisted_and_resumed(funded: FakeKraken) -> None:
    persisted: list[int] = []
    venue = adapter(funded, nonces=NonceSource(persist=persisted.append))
    await venue.balances()
    await venue.stop()
    assert persisted and persisted == sorted(persisted)
    resumed = adapter(funded, nonces=NonceSource(last_issued=persisted[-1] + 10_000_000_000))
    await resumed.balances()  # a nonce far ahead of wall time is still accepted (it only has to grow)
    await resumed.stop()


async def test_partial_fills_each_carry_their_fee(venue: KrakenExchange, funded: FakeKraken) -> None:
    await venue.place_order(buy("tc-parts", qty="0.02", limit="29500"))
    await funded.fill("tc-parts", Decimal("0.005"))
    part = await venue.fetch_order("BTC/USD", "tc-parts")
    assert part is not None and part.status is OrderStatus.PARTIALLY_FILLED and part.filled_qty == Decimal("0.005")
    await funded.fill("tc-parts", Decimal("0.015"))
    done = await venue.fetch_order("BTC/USD", "tc-parts")
    page = await venue.fills_since(None)
    assert done is not None and done.status is OrderStatus.FILLED
    assert [f.qty for f in page.fills] == [Decimal("0.005"), Decimal("0.015")]
    assert all(f.client_order_id == "tc-parts" and f.price == Decimal("29500") for f in page.fills)
    assert sum(f.fee for f in page.fills) == done.fee
    assert (await venue.fills_since(page.cursor)).fills == []


async def test_fills_page_oldest_first_across_more_than_one_page(venue: KrakenExchange, funded: FakeKraken) -> None:
    await venue.place_order(buy("tc-many", qty="0.06", limit="29500"))
    for _ in range(60):
        await funded.fill("tc-many", Decimal("0.001"))
    first = await venue.fills_since(None)
    second = await venue.fills_since(first.cursor)
    third = await venue.fills_since(second.cursor)
    ids = [f.fill_id for f in first.fills + second.fills]
    assert (len(first.fills), len(second.fills), third.fills) == (50, 10, [])
    assert ids == list(funded.trades) and len(set(ids)) == 60  # the venue's order, no gaps, no repeats


async def test_cancel(venue: KrakenExchange, funded: FakeKraken) -> None:
    await venue.place_order(buy("tc-cancel", limit="29000"))
    cancelled = await venue.cancel_order("BTC/USD", "tc-cancel")
    assert cancelled.status is OrderStatus.CANCELLED
    again = await venue.cancel_order("BTC/USD", "tc-cancel")  # already final: reported, not an error
    assert again.status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFound):
        await venue.cancel_order("BTC/USD", "tc-never-placed")
    assert await venue.fetch_order("BTC/USD", "tc-never-placed") is None


async def test_preflight_passes_for_a_least_privilege_key(venue: KrakenExchange, funded: FakeKraken) -> None:
    checks = {c.name: c for c in await venue.preflight(["BTC/USD", "ETH/USD"])}
    assert checks["api key"].ok and checks["no withdrawal permission"].ok and checks["clock skew"].ok
    assert checks["balances"].ok and "USD 10000" in checks["balances"].detail
    assert checks["minimum order BTC/USD"].ok and "min qty 0.0001 BTC" in checks["minimum order BTC/USD"].detail
    assert not checks["minimum order ETH/USD"].ok


async def test_preflight_flags_withdrawal_rights_and_clock_skew() -> None:
    async with FakeKraken(key_can_withdraw=True) as fake:
        fake.server_time_offset_s = 30
        venue = adapter(fake)
        checks = {c.name: c for c in await venue.preflight([])}
        await venue.stop()
    assert not checks["no withdrawal permission"].ok and "Withdraw Funds" in checks["no withdrawal permission"].detail
    assert not checks["clock skew"].ok
    assert not checks["balances"].ok  # nothing funded


async def test_preflight_reports_a_bad_key_without_raising(fake: FakeKraken) -> None:
    venue = KrakenExchange("nope", fake.api_secret, rest_url=fake.rest_url, **fast_settings())
    checks = {c.name: c for c in await venue.preflight(["BTC/USD"])}
    await venue.stop()
    assert not checks["api key"].ok and "Invalid key" in checks["api key"].detail
    assert not checks["no withdrawal permission"].ok


async def test_the_adapter_is_an_exchange_and_orders_survive_a_restart_with_long_client_ids(
        venue: KrakenExchange, funded: FakeKraken) -> None:
    from exchanges.base import Exchange

    assert isinstance(venue, Exchange)
    long_id = "breakout-BTC-USD-2024-05-01T12:00:00-0001"  # too long for Kraken: sent as a derived UUID
    placed = await venue.place_order(buy(long_id, limit="29000"))
    assert placed.client_order_id == long_id
    restarted = adapter(funded)
    found = await restarted.fetch_order("BTC/USD", long_id)
    await restarted.stop()
    assert found is not None and found.client_order_id == long_id and found.venue_order_id == placed.venue_order_id


async def test_the_local_api_counter_paces_private_calls(funded: FakeKraken) -> None:
    from exchanges.kraken.ratelimit import Tier

    venue = adapter(funded, tier=Tier(max_count=2, decay_per_s=20))
    started = asyncio.get_running_loop().time()
    for _ in range(6):
        await venue.balances()
    elapsed = asyncio.get_running_loop().time() - started
    await venue.stop()
    assert elapsed >= 0.15  # four calls beyond the burst of two, at 20 units/s


async def test_lookup_by_client_id_survives_kraken_refusing_the_filter(venue: KrakenExchange,
                                                                      funded: FakeKraken) -> None:
    funded.inject("OpenOrders", "error", error="EGeneral:Invalid arguments:cl_ord_id")
    order = await venue.place_order(buy("tc-nofilter", limit="29000"))
    again = await venue.place_order(buy("tc-nofilter", limit="29000"))
    assert again.venue_order_id == order.venue_order_id and funded.count("AddOrder") == 1
    last_open_orders_call = [params for name, params in funded.calls if name == "OpenOrders"][-1]
    assert set(last_open_orders_call) == {"nonce"}  # searched the unfiltered list
