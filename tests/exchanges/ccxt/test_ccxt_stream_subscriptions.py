"""ccxt market data takes pairs while it runs (``/pairs add``/``remove``), over ccxt.pro's kraken class on
the fake Kraken's WebSocket and over REST polling: an added pair streams, a removed one stops, a
reconnect keeps the current set, a pair the venue does not list is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from exchanges.base import Candle, FeedStatus, MarketEvent, PairSubscriptions, Ticker
from exchanges.errors import UnknownPair
from tests.core.waiting import eventually
from tests.exchanges.ccxt.harness import ccxt_venue
from tests.exchanges.fakes import FakeKraken, MarketController

BTC, XRP = "BTC/USD", "XRP/USD"
MINUTE = timedelta(minutes=1)


async def until(stream: AsyncIterator[MarketEvent], wanted: Callable[[list[MarketEvent]], object],
                seen: list[MarketEvent]) -> None:
    """Read ``stream`` into ``seen`` until ``wanted(seen)`` holds (10 s at most)."""
    async with asyncio.timeout(10):
        while not wanted(seen):
            seen.append(await anext(stream))


async def push_minutes(market: MarketController, pair: str, top: datetime, *ks: int) -> None:
    for k in ks:
        await market.push_candle(pair, 60, top - k * MINUTE, *(Decimal(1),) * 4, Decimal(1))


def candles_of(seen: list[MarketEvent], pair: str) -> list[Candle]:
    return [e for e in seen if isinstance(e, Candle) and e.pair == pair]


async def test_ccxt_pro_watchers_start_and_stop_with_the_pairs_and_survive_a_reconnect() -> None:
    async with ccxt_venue(FakeKraken(), websocket=True, ws_url_from_fake=True) as (venue, market):
        for pair in (BTC, XRP):
            await market.set_price(pair, Decimal(1))
        top = datetime.now(UTC).replace(second=0, microsecond=0)
        stream = venue.market_events([BTC], 60)
        assert isinstance(stream, PairSubscriptions)
        seen: list[MarketEvent] = []
        try:
            assert isinstance(await anext(stream), FeedStatus)
            assert await stream.add(XRP) == ()
            await eventually(lambda: any("XRP" in str(m) for _, m in market.fake.ws_received), 10, "XRP subscribed")
            await push_minutes(market, XRP, top, 10, 9)
            await until(stream, lambda s: candles_of(s, XRP), seen)
            assert candles_of(seen, XRP)[0].ts == top - 10 * MINUTE

            await market.drop_websockets()  # ccxt.pro reconnects when asked again; both watchers ask
            await eventually(lambda: market.fake.ws_connections["public"] >= 2, 10, "a new WebSocket connection")
            await push_minutes(market, XRP, top, 8, 7)
            await until(stream, lambda s: any(c.ts == top - 8 * MINUTE for c in candles_of(s, XRP)), seen)

            await stream.remove(XRP)
            seen.clear()
            await push_minutes(market, XRP, top, 6, 5)
            await push_minutes(market, BTC, top, 6, 5)
            await until(stream, lambda s: candles_of(s, BTC), seen)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        assert not candles_of(seen, XRP)


async def test_polling_asks_for_an_added_pair_and_stops_asking_for_a_removed_one() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        for pair in (BTC, XRP):
            await market.set_price(pair, Decimal(1))
        stream = venue.market_events([BTC], 60)
        assert isinstance(stream, PairSubscriptions)
        seen: list[MarketEvent] = []
        try:
            assert isinstance(await anext(stream), FeedStatus)
            with pytest.raises(UnknownPair):
                await stream.add("NOPE/USD")
            await stream.add(XRP)
            await until(stream, lambda s: any(isinstance(e, Ticker) and e.pair == XRP for e in s), seen)
            await stream.remove(XRP)
            seen.clear()
            await until(stream, lambda s: sum(isinstance(e, Ticker) for e in s) >= 3, seen)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        assert {e.pair for e in seen if isinstance(e, Ticker)} == {BTC}
