"""Kraken's market stream takes pairs while it runs (``/pairs add``/``remove``): a subscribe mid-stream
brings the new pair's candles, an unsubscribe stops them, a reconnect keeps the current set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from exchanges.base import Candle, FeedStatus, PairSubscriptions
from exchanges.errors import UnknownPair
from exchanges.kraken import KrakenExchange
from tests.exchanges.fakes import FakeKraken, fast_settings
from tests.fakes.clock import ManualClock


def row(ts: datetime, close: str = "30000") -> list[Any]:
    return [int(ts.timestamp()), close, close, close, close, close, "1.5", 3]


@pytest.fixture
def clock() -> ManualClock:
    """Starts on a whole minute, so the candles the tests lay out from ``clock.now()`` line up."""
    return ManualClock(datetime(2024, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def streaming(fake: FakeKraken, clock: ManualClock) -> AsyncIterator[KrakenExchange]:
    venue = KrakenExchange(None, None, rest_url=fake.rest_url, ws_url=fake.ws_url, clock=clock, **fast_settings())
    await venue.start()
    yield venue
    await venue.stop()


async def candles_until(stream: AsyncIterator[Any], done: Any) -> list[Candle]:
    """Candles from ``stream`` until ``done(candles)`` holds (4 s at most)."""
    out: list[Candle] = []
    async with asyncio.timeout(4):
        async for event in stream:
            if isinstance(event, Candle):
                out.append(event)
                if done(out):
                    return out
    return out


async def test_a_pair_added_mid_stream_streams_and_one_removed_stops(
        fake: FakeKraken, streaming: KrakenExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    fake.add_candles("BTC/USD", 1, [row(t0 - timedelta(minutes=1))])
    fake.add_candles("XRP/USD", 1, [row(t0 - timedelta(minutes=1), "3000")])
    stream = streaming.market_events(["BTC/USD"], 60)
    assert isinstance(stream, PairSubscriptions)
    try:
        async with asyncio.timeout(4):
            assert isinstance(await anext(stream), FeedStatus)
        assert await stream.add("XRP/USD") == ()  # no history of its own: the caller back-fills from REST
        for m in (0, 1):
            await fake.push_candle("BTC/USD", 1, row(t0 + timedelta(minutes=m)))
            await fake.push_candle("XRP/USD", 1, row(t0 + timedelta(minutes=m), "3000"))
        got = await candles_until(stream, lambda cs: {c.pair for c in cs if c.ts == t0} == {"BTC/USD", "XRP/USD"})
        eth = [c for c in got if c.pair == "XRP/USD"]
        assert eth[-1].ts == t0 and eth[-1].close == Decimal("3000")

        await stream.remove("XRP/USD")
        for m in (2, 3):
            await fake.push_candle("XRP/USD", 1, row(t0 + timedelta(minutes=m), "3000"))
            await fake.push_candle("BTC/USD", 1, row(t0 + timedelta(minutes=m)))
        later = await candles_until(stream, lambda cs: any(c.ts == t0 + timedelta(minutes=2) for c in cs))
    finally:
        await stream.aclose()
    assert {c.pair for c in later} == {"BTC/USD"}
    sent = [(m["method"], m["params"]["channel"], tuple(m["params"].get("symbol", ())))
            for _, m in fake.ws_received if m.get("method") in ("subscribe", "unsubscribe")]
    assert ("subscribe", "ohlc", ("XRP/USD",)) in sent and ("subscribe", "ticker", ("XRP/USD",)) in sent
    assert ("unsubscribe", "ohlc", ("XRP/USD",)) in sent and ("unsubscribe", "ticker", ("XRP/USD",)) in sent
    assert fake.ws_connections["public"] == 1  # on the open connection, not a new one


async def test_a_reconnect_subscribes_the_current_set(
        fake: FakeKraken, streaming: KrakenExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        async with asyncio.timeout(4):
            assert isinstance(await anext(stream), FeedStatus)
        await stream.add("XRP/USD")
        await stream.add("ETH/USDT")
        await stream.remove("BTC/USD")
        await fake.drop_websockets()
        async with asyncio.timeout(4):
            statuses = []
            while len(statuses) < 2:
                event = await anext(stream)
                if isinstance(event, FeedStatus):
                    statuses.append(event)
        assert [s.connected for s in statuses] == [False, True]
        for m in (0, 1):
            for pair in ("BTC/USD", "XRP/USD", "ETH/USDT"):
                await fake.push_candle(pair, 1, row(t0 + timedelta(minutes=m)))
        got = await candles_until(stream, lambda cs: {c.pair for c in cs} >= {"XRP/USD", "ETH/USDT"})
    finally:
        await stream.aclose()
    assert {c.pair for c in got} == {"XRP/USD", "ETH/USDT"}
    last = [m for _, m in fake.ws_received if m.get("method") == "subscribe"][-2:]
    assert [(m["params"]["channel"], m["params"]["symbol"]) for m in last] == [
        ("ohlc", ["XRP/USD", "ETH/USDT"]), ("ticker", ["XRP/USD", "ETH/USDT"])]


async def test_a_pair_kraken_does_not_list_is_refused_and_the_stream_goes_on(
        fake: FakeKraken, streaming: KrakenExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    stream = streaming.market_events(["BTC/USD"], 60)
    try:
        async with asyncio.timeout(4):
            assert isinstance(await anext(stream), FeedStatus)
        with pytest.raises(UnknownPair):
            await stream.add("NOPE/USD")
        for m in (0, 1):
            await fake.push_candle("BTC/USD", 1, row(t0 + timedelta(minutes=m)))
        got = await candles_until(stream, lambda cs: any(c.ts == t0 for c in cs))
    finally:
        await stream.aclose()
    assert {c.pair for c in got} == {"BTC/USD"}
