"""Kraken WebSocket v2 streams against the fake: closed candles, tickers, reconnects with
resubscription and REST gap fill, malformed messages, the private executions stream, books."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from exchanges.base import (
    Candle,
    FeedStatus,
    Fill,
    Order,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)
from exchanges.kraken import KrakenExchange
from tests.exchanges.fakes import FakeKraken, fast_settings
from tests.fakes.clock import ManualClock

ONE = Decimal(1)


def row(ts: datetime, close: str = "30000") -> list[Any]:
    return [int(ts.timestamp()), "29990", "30010", "29980", close, close, "1.5", 3]


@pytest.fixture
def clock() -> ManualClock:
    """Starts on a whole minute, so the candles the tests lay out from ``clock.now()`` line up."""
    return ManualClock(datetime(2024, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def streaming(fake: FakeKraken, clock: ManualClock) -> AsyncIterator[KrakenExchange]:
    venue = KrakenExchange(fake.api_key, fake.api_secret, rest_url=fake.rest_url, ws_url=fake.ws_url,
                           ws_auth_url=fake.ws_auth_url, clock=clock, **fast_settings())
    await venue.start()
    yield venue
    await venue.stop()


async def take(stream: AsyncIterator[Any], n: int, kinds: tuple[type, ...] = (Candle, FeedStatus, Ticker)) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(4):
        async for event in stream:
            if isinstance(event, kinds):
                out.append(event)
                if len(out) == n:
                    return out
    return out


async def test_closed_candles_stream_in_order_and_survive_a_dropped_connection(
        fake: FakeKraken, streaming: KrakenExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    await fake.set_price("BTC/USD", Decimal("30000"))
    fake.add_candles("BTC/USD", 1, [row(t0 + timedelta(minutes=m)) for m in range(-5, 1)])  # t0 is running
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        first = await take(stream, 3, (Candle, FeedStatus))
        assert first[0] == FeedStatus(True, "connected", first[0].ts)
        assert [c.ts for c in first[1:]] == [t0 - timedelta(minutes=2), t0 - timedelta(minutes=1)]

        await fake.push_candle("BTC/USD", 1, row(t0 + timedelta(minutes=1)))  # closes t0
        (closed,) = await take(stream, 1, (Candle,))
        assert closed.ts == t0 and closed.close == Decimal("30000") and closed.timeframe_s == 60

        await fake.drop_websockets()
        (down,) = await take(stream, 1, (Candle, FeedStatus))
        # while the link is down three more minutes trade; the last is still running
        fake.add_candles("BTC/USD", 1, [row(t0 + timedelta(minutes=m), "30100") for m in (1, 2, 3)])
        clock.advance(3 * 60 + 30)
        up, *gap = await take(stream, 3, (Candle, FeedStatus))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert isinstance(down, FeedStatus) and not down.connected
    assert isinstance(up, FeedStatus) and up.connected and "gap-filled 2" in up.detail
    assert [c.ts for c in gap] == [t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)]
    assert all(c.close == Decimal("30100") for c in gap)
    assert fake.ws_connections["public"] == 2
    subscribes = [m["params"]["channel"] for kind, m in fake.ws_received if m.get("method") == "subscribe"]
    assert subscribes == ["ohlc", "ticker", "ohlc", "ticker"]  # resubscribed after reconnecting
    ohlc_calls = [p for name, p in fake.calls if name == "OHLC"]
    assert ohlc_calls == [{"pair": "XXBTZUSD", "interval": "1", "since": str(int(t0.timestamp()))}]


async def test_no_candle_is_emitted_twice_across_reconnects(
        fake: FakeKraken, streaming: KrakenExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    await fake.set_price("BTC/USD", Decimal("30000"))
    fake.add_candles("BTC/USD", 1, [row(t0 + timedelta(minutes=m)) for m in range(-3, 1)])
    candles: list[Candle] = []
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        candles += [e for e in await take(stream, 3, (Candle, FeedStatus)) if isinstance(e, Candle)]
        for k in (1, 2, 3):
            await fake.drop_websockets()
            (down,) = await take(stream, 1, (FeedStatus,))
            assert not down.connected
            fake.add_candles("BTC/USD", 1, [row(t0 + timedelta(minutes=k))])  # the new running candle
            clock.advance(90)
            up, gap = await take(stream, 2, (Candle, FeedStatus))
            assert isinstance(up, FeedStatus) and up.connected
            candles.append(gap)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert [c.ts for c in candles] == [t0 + timedelta(minutes=m) for m in (-2, -1, 0, 1, 2)]
    assert fake.ws_connections["public"] == 4


async def test_tickers_stream(fake: FakeKraken, streaming: KrakenExchange) -> None:
    await fake.set_price("BTC/USD", Decimal("30000"), spread=Decimal("2"))
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        snapshot = (await take(stream, 1, (Ticker,)))[0]
        await fake.set_price("BTC/USD", Decimal("31000"), spread=Decimal("2"))
        await fake.push_ticker("BTC/USD")
        update = (await take(stream, 1, (Ticker,)))[0]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert (snapshot.bid, snapshot.ask) == (Decimal("29999"), Decimal("30001"))
    assert (update.pair, update.bid, update.ask, update.last) == ("BTC/USD", Decimal("30999"), Decimal("31001"),
                                                                 Decimal("31000"))


async def test_a_malformed_message_is_skipped_without_dropping_the_feed(
        fake: FakeKraken, streaming: KrakenExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    await fake.set_price("BTC/USD", Decimal("30000"))
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        await take(stream, 2, (FeedStatus, Ticker))
        await fake.push_raw('{"channel": "ohlc", "data": [{"symbol": "BTC/USD", "open": ')
        await fake.push_raw('{"channel": "ohlc", "type": "update", "data": [{"symbol": "BTC/USD"}]}')
        await fake.push_candle("BTC/USD", 1, row(t0 - timedelta(minutes=5)))
        (event,) = await take(stream, 1)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert isinstance(event, Candle) and event.ts == t0 - timedelta(minutes=5)
    assert fake.ws_connections["public"] == 1


async def test_silence_is_treated_as_a_dead_link(clock: ManualClock) -> None:
    async with FakeKraken(heartbeat_s=30) as quiet:
        await quiet.set_price("BTC/USD", Decimal("30000"))
        venue = KrakenExchange(rest_url=quiet.rest_url, ws_url=quiet.ws_url, clock=clock,
                               **{**fast_settings(), "ws_idle_timeout_s": 0.3})
        stream = venue.market_events(["BTC/USD"], 60)
        try:
            events = await take(stream, 4, (FeedStatus,))
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            await venue.stop()
    assert [e.connected for e in events] == [True, False, True, False]
    assert "no message for 0.3s" in events[1].detail


async def test_private_executions_stream_fills_and_orders(fake: FakeKraken, streaming: KrakenExchange) -> None:
    fake.set_balance("USD", Decimal("10000"))
    await fake.set_price("BTC/USD", Decimal("30000"))
    stream = streaming.private_events()
    try:
        assert (await take(stream, 1, (FeedStatus,)))[0].connected
        await streaming.place_order(OrderRequest("tc-ws-1", "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.02"),
                                                 Decimal("29000")))
        await fake.fill("tc-ws-1", Decimal("0.005"))
        events = await take(stream, 3, (Fill, Order))
        fills = [e for e in events if isinstance(e, Fill)]
        orders = [e for e in events if isinstance(e, Order)]
        assert orders[0].status is OrderStatus.SUBMITTED and orders[0].client_order_id == "tc-ws-1"
        (fill,) = fills
        assert (fill.qty, fill.price, fill.fee_currency) == (Decimal("0.005"), Decimal("29000"), "USD")
        assert fill.fee == Decimal("0.232") and fill.client_order_id == "tc-ws-1" and fill.liquidity == "maker"
        assert fill.fill_id in fake.trades  # the same id TradesHistory uses

        # a fill while disconnected arrives from REST after reconnecting, once
        await fake.drop_websockets("private")
        await take(stream, 1, (FeedStatus,))
        await fake.fill("tc-ws-1", Decimal("0.005"))
        after = await take(stream, 2, (FeedStatus, Fill))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert isinstance(after[0], FeedStatus) and after[0].connected
    assert isinstance(after[1], Fill) and after[1].qty == Decimal("0.005") and after[1].fill_id != fill.fill_id
    assert fake.count("GetWebSocketsToken") == 2  # a fresh token for each connection


async def test_order_book_stream(fake: FakeKraken, streaming: KrakenExchange) -> None:
    await fake.set_price("BTC/USD", Decimal("30000"), spread=Decimal("1"))
    stream = streaming.book_events(["BTC/USD"], depth=10)
    try:
        (book,) = await take(stream, 1, (OrderBook,))
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert book.bids == ((Decimal("29999.5"), ONE),) and book.asks == ((Decimal("30000.5"), ONE),)
