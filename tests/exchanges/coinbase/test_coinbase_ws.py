"""Coinbase WebSocket streams against the fake: candles (streamed at 5 minutes, polled otherwise),
tickers, reconnects with resubscription and REST gap fill, sequence gaps, the user channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from exchanges.base import Candle, FeedStatus, Fill, Order, OrderRequest, OrderStatus, OrderType, Side, Ticker
from exchanges.coinbase import CoinbaseExchange, CoinbaseSymbols
from exchanges.errors import AuthError
from tests.exchanges.fakes import FakeCoinbase, fast_settings
from tests.fakes.clock import ManualClock


def row(ts: datetime, close: str = "30000") -> dict[str, str]:
    return {"start": str(int(ts.timestamp())), "low": "29980", "high": "30010", "open": "29990", "close": close,
            "volume": "1.5"}


@pytest.fixture
def clock() -> ManualClock:
    """Starts on a five-minute boundary, so both the 1- and 5-minute candles line up with ``clock.now()``."""
    return ManualClock(datetime(2024, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def streaming(fake: FakeCoinbase, clock: ManualClock) -> AsyncIterator[CoinbaseExchange]:
    venue = CoinbaseExchange(fake.key_name, fake.private_key_pem, rest_url=fake.rest_url, ws_url=fake.ws_url,
                             ws_user_url=fake.ws_user_url, clock=clock, **fast_settings())
    await venue.start()
    yield venue
    await venue.stop()


async def take(stream: AsyncIterator[Any], n: int, kinds: tuple[type, ...]) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(4):
        async for event in stream:
            if isinstance(event, kinds):
                out.append(event)
                if len(out) == n:
                    return out
    return out


async def test_five_minute_candles_stream_and_are_gap_filled_after_a_drop(
        fake: FakeCoinbase, streaming: CoinbaseExchange, clock: ManualClock) -> None:
    t0, five = clock.now(), timedelta(minutes=5)
    await fake.set_price("BTC/USD", Decimal("30000"))
    fake.add_candles("BTC/USD", 300, [row(t0 + k * five) for k in range(-3, 1)])  # t0 running
    stream = streaming.market_events(["BTC/USD"], 300)
    try:
        first = await take(stream, 3, (Candle, FeedStatus))
        assert first[0].connected and [c.ts for c in first[1:]] == [t0 - 2 * five, t0 - five]
        await fake.push_candle("BTC/USD", 300, row(t0 + five))
        assert [c.ts for c in await take(stream, 1, (Candle,))] == [t0]
        await fake.drop_websockets()
        (down,) = await take(stream, 1, (FeedStatus,))
        fake.add_candles("BTC/USD", 300, [row(t0 + k * five, "31000") for k in (1, 2, 3)])
        clock.advance(3 * 300 + 30)
        up, *gap = await take(stream, 3, (Candle, FeedStatus))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert not down.connected and up.connected and "gap-filled 2" in up.detail
    assert [c.ts for c in gap] == [t0 + five, t0 + 2 * five] and all(c.close == Decimal("31000") for c in gap)
    channels = [m["channel"] for kind, m in fake.ws_received if kind == "market"]
    assert channels == ["heartbeats", "ticker", "candles"] * 2
    assert all(m.get("jwt") for _, m in fake.ws_received)


async def test_other_timeframes_are_read_from_rest_as_each_bar_closes(
        fake: FakeCoinbase, streaming: CoinbaseExchange, clock: ManualClock) -> None:
    t0, minute = clock.now(), timedelta(minutes=1)
    await fake.set_price("BTC/USD", Decimal("30000"))
    fake.add_candles("BTC/USD", 60, [row(t0 - minute), row(t0)])
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        await take(stream, 1, (FeedStatus,))
        clock.advance(62.5)  # t0's bar is over
        (candle,) = await take(stream, 1, (Candle,))
        fake.add_candles("BTC/USD", 60, [row(t0 + minute, "30500")])
        clock.advance(60)
        (following,) = await take(stream, 1, (Candle,))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert candle.ts == t0 and candle.timeframe_s == 60 and following.ts == t0 + minute
    assert [m["channel"] for _, m in fake.ws_received] == ["heartbeats", "ticker"]  # no 1-minute WS candles


async def test_tickers_and_a_sequence_gap_triggers_a_resync_not_a_reconnect(
        fake: FakeCoinbase, streaming: CoinbaseExchange, clock: ManualClock) -> None:
    t0, five = clock.now(), timedelta(minutes=5)
    await fake.set_price("BTC/USD", Decimal("30000"), spread=Decimal("1"))
    fake.add_candles("BTC/USD", 300, [row(t0 - five), row(t0)])
    stream = streaming.market_events(["BTC/USD"], 300)
    try:
        (ticker,) = await take(stream, 1, (Ticker,))
        await take(stream, 1, (Candle,))
        fake.add_candles("BTC/USD", 300, [row(t0 + five)])  # t0 finished, never streamed (lost)
        clock.advance(300 + 30)
        fake.skip_sequence(3)
        (resynced,) = await take(stream, 1, (Candle,))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert (ticker.bid, ticker.ask, ticker.last) == (Decimal("29999.5"), Decimal("30000.5"), Decimal("30000"))
    assert resynced.ts == t0 and fake.ws_connections["market"] == 1


async def test_a_malformed_message_is_skipped(fake: FakeCoinbase, streaming: CoinbaseExchange,
                                              clock: ManualClock) -> None:
    await fake.set_price("BTC/USD", Decimal("30000"))
    stream = streaming.market_events(["BTC/USD"], 300)
    try:
        await take(stream, 1, (Ticker,))
        await fake.push_raw("{{{")
        await fake.push_raw('{"channel": "ticker", "events": [{"tickers": [{"product_id": "BTC-USD"}]}]}')
        await fake.set_price("BTC/USD", Decimal("30100"))
        await fake.push_ticker("BTC/USD")
        (ticker,) = await take(stream, 1, (Ticker,))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert ticker.last == Decimal("30100") and fake.ws_connections["market"] == 1


async def test_user_channel_streams_orders_and_their_fills(fake: FakeCoinbase, streaming: CoinbaseExchange) -> None:
    fake.set_balance("USD", Decimal("10000"))
    await fake.set_price("BTC/USD", Decimal("30000"))
    stream = streaming.private_events()
    try:
        assert (await take(stream, 1, (FeedStatus,)))[0].connected
        await streaming.place_order(OrderRequest("tc-cb-ws", "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.02"),
                                                 Decimal("29000")))
        (new,) = await take(stream, 1, (Order,))
        await fake.fill("tc-cb-ws", Decimal("0.005"))
        events = await take(stream, 2, (Order, Fill))
        await fake.drop_websockets("user")
        await take(stream, 1, (FeedStatus,))
        await fake.fill("tc-cb-ws", Decimal("0.015"))  # while disconnected
        after = await take(stream, 2, (FeedStatus, Fill))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert new.client_order_id == "tc-cb-ws" and new.status is OrderStatus.SUBMITTED
    order, fill = events
    assert isinstance(order, Order) and order.status is OrderStatus.PARTIALLY_FILLED
    assert isinstance(fill, Fill) and fill.qty == Decimal("0.005") and fill.fee == Decimal("0.58")
    assert fill.client_order_id == "tc-cb-ws" and fill.liquidity == "maker"
    assert after[0].connected and isinstance(after[1], Fill) and after[1].qty == Decimal("0.015")


async def test_the_user_channel_needs_a_key(fake: FakeCoinbase) -> None:
    venue = CoinbaseExchange(rest_url=fake.rest_url, ws_user_url=fake.ws_user_url, **fast_settings())
    venue._symbols = CoinbaseSymbols([])  # no REST needed before the WebSocket refuses
    with pytest.raises(AuthError):
        await take(venue.private_events(), 1, (FeedStatus,))
    await venue.stop()
