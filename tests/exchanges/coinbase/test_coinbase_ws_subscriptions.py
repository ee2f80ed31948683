"""Coinbase's market stream takes pairs while it runs (``/pairs add``/``remove``): a subscribe mid-stream
brings the new product's candles, an unsubscribe stops them, a reconnect keeps the current set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from exchanges.base import Candle, FeedStatus, PairSubscriptions
from exchanges.coinbase import CoinbaseExchange
from exchanges.errors import UnknownPair
from tests.exchanges.fakes import FakeCoinbase, fast_settings
from tests.fakes.clock import ManualClock

FIVE = timedelta(minutes=5)


def row(ts: datetime, close: str = "30000") -> dict[str, str]:
    return {"start": str(int(ts.timestamp())), "low": close, "high": close, "open": close, "close": close,
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


async def candles_until(stream: AsyncIterator[Any], done: Any) -> list[Candle]:
    out: list[Candle] = []
    async with asyncio.timeout(4):
        async for event in stream:
            if isinstance(event, Candle):
                out.append(event)
                if done(out):
                    return out
    return out


async def first_status(stream: AsyncIterator[Any]) -> FeedStatus:
    async with asyncio.timeout(4):
        async for event in stream:
            if isinstance(event, FeedStatus):
                return event
    raise AssertionError("the stream ended")


def sent(fake: FakeCoinbase, kind: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(m["channel"], tuple(m.get("product_ids", ()))) for k, m in fake.ws_received
            if k == "market" and m.get("type") == kind]


async def test_a_product_added_mid_stream_streams_and_one_removed_stops(
        fake: FakeCoinbase, streaming: CoinbaseExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    stream = streaming.market_events(["BTC/USD"], 300)
    assert isinstance(stream, PairSubscriptions)
    try:
        assert (await first_status(stream)).connected
        assert await stream.add("ETH/USDT") == ()
        for k in (0, 1):
            await fake.push_candle("BTC/USD", 300, row(t0 + k * FIVE))
            await fake.push_candle("ETH/USDT", 300, row(t0 + k * FIVE, "3000"))
        got = await candles_until(stream, lambda cs: {c.pair for c in cs if c.ts == t0} == {"BTC/USD", "ETH/USDT"})
        assert [c.close for c in got if c.pair == "ETH/USDT"] == [Decimal("3000")]

        await stream.remove("ETH/USDT")
        for k in (2, 3):
            await fake.push_candle("ETH/USDT", 300, row(t0 + k * FIVE, "3000"))
            await fake.push_candle("BTC/USD", 300, row(t0 + k * FIVE))
        later = await candles_until(stream, lambda cs: any(c.ts == t0 + 2 * FIVE for c in cs))
    finally:
        await stream.aclose()
    assert {c.pair for c in later} == {"BTC/USD"}
    assert {("ticker", ("ETH-USDT",)), ("candles", ("ETH-USDT",))} <= set(sent(fake, "subscribe"))
    assert sent(fake, "unsubscribe") == [("ticker", ("ETH-USDT",)), ("candles", ("ETH-USDT",))]
    assert fake.ws_connections["market"] == 1


async def test_a_reconnect_subscribes_the_current_set(
        fake: FakeCoinbase, streaming: CoinbaseExchange, clock: ManualClock) -> None:
    t0 = clock.now()
    stream = streaming.market_events(["BTC/USD"], 300)
    try:
        assert (await first_status(stream)).connected
        await stream.add("ETH/USDT")
        await stream.remove("BTC/USD")
        await fake.drop_websockets()
        assert not (await first_status(stream)).connected
        assert (await first_status(stream)).connected
        for k in (0, 1):
            for pair in ("BTC/USD", "ETH/USDT"):
                await fake.push_candle(pair, 300, row(t0 + k * FIVE))
        got = await candles_until(stream, lambda cs: any(c.pair == "ETH/USDT" for c in cs))
    finally:
        await stream.aclose()
    assert {c.pair for c in got} == {"ETH/USDT"}
    assert sent(fake, "subscribe")[-2:] == [("ticker", ("ETH-USDT",)), ("candles", ("ETH-USDT",))]


async def test_a_product_coinbase_does_not_list_is_refused(streaming: CoinbaseExchange) -> None:
    stream = streaming.market_events(["BTC/USD"], 300)
    try:
        assert (await first_status(stream)).connected
        with pytest.raises(UnknownPair):
            await stream.add("NOPE/USD")
    finally:
        await stream.aclose()
