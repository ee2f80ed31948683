"""Market data by REST polling (ccxt.websocket = false, or an exchange without watchOHLCV): tickers,
each newly closed candle once, and FeedStatus when polling fails and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from exchanges.base import Candle, FeedStatus, MarketEvent, Ticker
from tests.core.waiting import eventually
from tests.exchanges.ccxt.harness import ccxt_venue
from tests.exchanges.fakes import FakeKraken


async def take(stream: AsyncIterator[MarketEvent], n: int) -> list[MarketEvent]:
    return [await anext(stream) for _ in range(n)]


async def test_polling_yields_tickers_new_closed_candles_and_feed_status() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        assert not venue.capabilities.websocket_market_data
        await market.set_price("BTC/USD", Decimal(20000))
        top = datetime.now(UTC).replace(second=0, microsecond=0)
        for k in (3, 2):
            market.add_candle("BTC/USD", 60, top - timedelta(minutes=k), *(Decimal(20000 + k),) * 4, Decimal(1))
        stream = venue.market_events(["BTC/USD"], 60)
        try:
            status, ticker, candle = await take(stream, 3)
            assert isinstance(status, FeedStatus) and status.connected and "polling" in status.detail
            assert isinstance(ticker, Ticker) and ticker.last == 20000
            assert isinstance(candle, Candle) and candle.ts == top - timedelta(minutes=2)  # the newest closed one
            market.add_candle("BTC/USD", 60, top - timedelta(minutes=1), *(Decimal(20001),) * 4, Decimal(1))
            events = await take(stream, 4)
            candles = [e for e in events if isinstance(e, Candle)]
            assert [c.ts for c in candles] == [top - timedelta(minutes=1)]  # each candle once
            market.fake.inject("Ticker", "http500", times=20)
            events = await take(stream, 1)
            assert isinstance(events[0], FeedStatus) and not events[0].connected
            market.fake.faults.clear()
            events = await take(stream, 1)
            assert isinstance(events[0], FeedStatus) and events[0].connected
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


async def test_private_events_poll_fills_after_the_first_page() -> None:
    from exchanges.base import Fill, OrderRequest, OrderType, Side

    async with ccxt_venue(FakeKraken()) as (venue, market):
        market.set_balance("USD", Decimal(100000))
        await market.set_price("BTC/USD", Decimal(20000))
        stream = venue.private_events()
        try:
            first = await anext(stream)
            assert isinstance(first, FeedStatus) and first.connected
            await venue.place_order(OrderRequest("tc-private-1", "BTC/USD", Side.BUY, OrderType.MARKET,
                                                 Decimal("0.001")))
            fill = await anext(stream)
            assert isinstance(fill, Fill) and fill.client_order_id == "tc-private-1" and fill.qty == Decimal("0.001")
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


async def test_ccxt_pro_streams_candles_and_tickers_from_the_fake_krakens_websocket() -> None:
    fake = FakeKraken()
    async with ccxt_venue(fake, websocket=True, ws_url_from_fake=True) as (venue, market):
        assert venue.capabilities.websocket_market_data and type(venue.ex).__module__ == "ccxt.pro.kraken"
        await market.set_price("BTC/USD", Decimal(20000))
        top = datetime.now(UTC).replace(second=0, microsecond=0)
        stream = venue.market_events(["BTC/USD"], 60)
        try:
            status = await anext(stream)
            assert isinstance(status, FeedStatus) and status.connected and "WebSocket" in status.detail

            async def candles(n: int) -> list[Candle]:
                out: list[Candle] = []
                while len(out) < n:
                    event = await anext(stream)
                    if isinstance(event, Candle):
                        out.append(event)
                return out

            for k in (3, 2):  # a candle is yielded once a later one has begun
                await market.push_candle("BTC/USD", 60, top - timedelta(minutes=k), *(Decimal(20000 + k),) * 4,
                                         Decimal(1))
            await market.push_candle("BTC/USD", 60, top - timedelta(minutes=2), *(Decimal(20009),) * 4, Decimal(2))
            await market.push_candle("BTC/USD", 60, top - timedelta(minutes=1), *(Decimal(20001),) * 4, Decimal(1))
            first, second = await candles(2)
            assert (first.ts, first.close) == (top - timedelta(minutes=3), 20003)
            assert (second.ts, second.close, second.volume) == (top - timedelta(minutes=2), 20009, 2)  # last state
            await market.push_ticker("BTC/USD")
            ticker = await anext(stream)
            while not isinstance(ticker, Ticker):
                ticker = await anext(stream)
            assert ticker.bid == 20000 and ticker.pair == "BTC/USD"
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


async def test_a_dropped_websocket_is_reported_and_the_stream_comes_back() -> None:
    async with ccxt_venue(FakeKraken(), websocket=True, ws_url_from_fake=True) as (venue, market):
        await market.set_price("BTC/USD", Decimal(20000))
        stream = venue.market_events(["BTC/USD"], 60)
        try:
            assert isinstance(await anext(stream), FeedStatus)
            await market.push_ticker("BTC/USD")
            assert isinstance(await anext(stream), Ticker)
            await market.drop_websockets()
            down = await anext(stream)
            assert isinstance(down, FeedStatus) and not down.connected
            back = None
            async with asyncio.timeout(10):
                while back is None:  # ccxt.pro reconnects when asked again; the next update proves it
                    await market.push_ticker("BTC/USD")
                    event = await anext(stream)
                    if isinstance(event, FeedStatus):
                        assert event.connected, event
                        back = event
            assert "streaming again" in back.detail
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


async def test_candles_missed_while_the_websocket_was_down_are_filled_from_rest() -> None:
    async with ccxt_venue(FakeKraken(), websocket=True, ws_url_from_fake=True) as (venue, market):
        await market.set_price("BTC/USD", Decimal(20000))
        top = datetime.now(UTC).replace(second=0, microsecond=0)
        minute = timedelta(minutes=1)
        stream = venue.market_events(["BTC/USD"], 60)
        seen: list[datetime] = []

        async def until(ts: datetime) -> None:
            async with asyncio.timeout(10):
                while ts not in seen:
                    event = await anext(stream)
                    if isinstance(event, Candle):
                        seen.append(event.ts)

        try:
            assert isinstance(await anext(stream), FeedStatus)
            for k in (10, 9):
                await market.push_candle("BTC/USD", 60, top - k * minute, *(Decimal(20000),) * 4, Decimal(1))
            await until(top - 10 * minute)
            await market.drop_websockets()
            for k in range(9, 2, -1):  # seven candles close while nobody listens: more than the WS snapshot holds
                market.add_candle("BTC/USD", 60, top - k * minute, *(Decimal(20000 + k),) * 4, Decimal(1))
            # ccxt.pro reconnects when asked again
            await eventually(lambda: market.fake.ws_connections["public"] >= 2, 10, "a new WebSocket connection")
            for k in (2, 1):
                await market.push_candle("BTC/USD", 60, top - k * minute, *(Decimal(20000),) * 4, Decimal(1))
            await until(top - 2 * minute)
            assert seen == [top - k * minute for k in range(10, 1, -1)]  # each once, in order, none missing
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
