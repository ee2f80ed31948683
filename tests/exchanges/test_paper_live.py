"""The paper venue on a live feed: the fake Kraken's and Coinbase's public streams, read without keys.

:func:`paper_on_live` is the harness: a fake venue, its real adapter built keyless (the same factory
the service uses), the paper venue with the venue's market rules, and a pump that hands every event
of the public WebSocket feed to the paper venue, as the engine's market hook does. Its controller
moves the market by moving the fake and streaming a ticker, then waits until the paper venue saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest

from core.app.paper_live import paper_rules, public_feed_venue
from core.settings.config import load_settings
from exchanges.base import Exchange, FeedStatus, OrderRequest, OrderStatus, OrderType, Side
from exchanges.clock import SystemClock
from exchanges.errors import AuthError, TemporaryError
from exchanges.paper import PaperExchange
from persistence.db import Database
from tests.core.waiting import eventually
from tests.exchanges.contract import ExchangeContract, venue_fixture
from tests.exchanges.fakes import FakeCoinbase, FakeKraken, MarketController, fast_settings

PAIRS = ("BTC/USD", "ETH/USDT")
# ccxt's class polling REST quickly, as the ccxt venue's own tests drive it
CCXT_FAST = {**{k: v for k, v in fast_settings().items() if k in ("retry", "request_timeout_s")},
             "rate_limit_ms": 1, "websocket": False, "poll_interval_s": 0.05}


class LiveFeedController:
    """Moves the fake venue's market and streams it; the paper venue follows through the feed."""

    def __init__(self, paper: PaperExchange, source: Exchange, market: MarketController, timeframe_s: int) -> None:
        self.paper, self.source, self.market, self.timeframe_s = paper, source, market, timeframe_s
        self.events: list[Any] = []

    async def last(self, pair: str) -> Decimal | None:
        try:
            return (await self.paper.ticker(pair)).last
        except TemporaryError:
            return None

    async def set_price(self, pair: str, price: Decimal, spread: Decimal = Decimal(0)) -> None:
        await self.market.set_price(pair, Decimal(price), Decimal(spread))
        await self.market.push_ticker(pair)

        async def seen() -> bool:
            t = None
            with contextlib.suppress(TemporaryError):
                t = await self.paper.ticker(pair)
            return t is not None and t.last == Decimal(price) and t.ask - t.bid == Decimal(spread)

        await eventually(seen, 10, f"{pair} at {price} on the paper venue")

    async def set_balance(self, currency: str, amount: Decimal) -> None:
        await self.paper.set_balance(currency, Decimal(amount))

    async def add_candle(self, pair: str, timeframe_s: int, ts: datetime, o: Decimal, h: Decimal, low: Decimal,
                         c: Decimal, v: Decimal) -> None:
        """History as the service back-fills it: into the venue's REST candles, read back, fed on."""
        self.market.add_candle(pair, timeframe_s, ts, o, h, low, c, v)
        for candle in await self.source.candles(pair, timeframe_s, since=ts, limit=10):
            await self.paper.on_candle(candle)


@asynccontextmanager
async def paper_on_live(db: Database, feed: str = "kraken", timeframe_s: int = 3600,
                        **paper_options: Any) -> AsyncIterator[tuple[PaperExchange, LiveFeedController]]:
    fake: FakeKraken | FakeCoinbase = FakeKraken() if feed.endswith("kraken") else FakeCoinbase()
    async with fake:
        section = "CCXT" if feed.startswith("ccxt:") else feed.upper()
        settings = load_settings(env={"TRADECTL_TRADING__FEED": feed, f"TRADECTL_{section}__REST_URL": fake.rest_url,
                                      f"TRADECTL_{section}__WS_URL": fake.ws_url}, dotenv_path=None)
        clock = SystemClock()
        source = public_feed_venue(settings, clock, **(CCXT_FAST if feed.startswith("ccxt:") else fast_settings()))
        await source.start()
        rules = paper_rules(await source.markets(), PAIRS, feed)
        paper_options.setdefault("starting_balances", {"USD": Decimal(10000)})
        paper = PaperExchange(db, rules, clock=clock, timeframe_s=timeframe_s, limit_through=True, **paper_options)
        await paper.start()
        ctl = LiveFeedController(paper, source, MarketController(fake), timeframe_s)
        for pair in PAIRS:  # a market to stream (ccxt's REST polling counts a venue without one as down)
            await ctl.market.set_price(pair, Decimal(20000))

        async def pump() -> None:
            async for event in source.market_events(list(PAIRS), timeframe_s):
                ctl.events.append(event)
                await paper.on_market_event(event)

        task = asyncio.create_task(pump(), name="test:paper-live-pump")
        try:
            await eventually(lambda: any(isinstance(e, FeedStatus) and e.connected for e in ctl.events), 10,
                             "the public feed connected")
            yield paper, ctl
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await paper.stop()
            await source.stop()


@asynccontextmanager
async def kraken_paper(db: Database) -> AsyncIterator[tuple[PaperExchange, LiveFeedController]]:
    async with paper_on_live(db, "kraken") as pair:
        yield pair


@asynccontextmanager
async def coinbase_paper(db: Database) -> AsyncIterator[tuple[PaperExchange, LiveFeedController]]:
    async with paper_on_live(db, "coinbase") as pair:
        yield pair


@asynccontextmanager
async def ccxt_kraken_paper(db: Database) -> AsyncIterator[tuple[PaperExchange, LiveFeedController]]:
    async with paper_on_live(db, "ccxt:kraken") as pair:
        yield pair


class TestPaperOnLiveKrakenContract(ExchangeContract):
    venue = venue_fixture(kraken_paper)


class TestPaperOnLiveCoinbaseContract(ExchangeContract):
    venue = venue_fixture(coinbase_paper)


class TestPaperOnLiveCcxtKrakenContract(ExchangeContract):
    venue = venue_fixture(ccxt_kraken_paper)


def _order(side: Side, qty: str, limit: Decimal | None = None, pair: str = "BTC/USD") -> OrderRequest:
    return OrderRequest(client_order_id=f"t-{side}-{qty}-{limit}-{datetime.now(UTC).timestamp()}", pair=pair,
                        side=side, type=OrderType.MARKET if limit is None else OrderType.LIMIT, qty=Decimal(qty),
                        limit_price=limit)


@pytest.mark.parametrize("feed", ["kraken", "coinbase", "ccxt:kraken"])
async def test_rules_are_the_venues_and_market_orders_fill_at_the_streamed_best_price_plus_slippage(
        sqlite_db: Database, feed: str) -> None:
    async with paper_on_live(sqlite_db, feed, slippage_bps=Decimal(5)) as (paper, ctl):
        live = (await ctl.source.markets())["BTC/USD"]
        rules = (await paper.markets())["BTC/USD"]
        assert (rules.price_tick, rules.qty_step, rules.min_qty, rules.min_notional, rules.taker_fee) == \
               (live.price_tick, live.qty_step, live.min_qty, live.min_notional, live.taker_fee)
        await ctl.set_balance("BTC", Decimal(1))
        await ctl.set_price("BTC/USD", Decimal(20000), spread=Decimal(10))  # bid 19995, ask 20005
        t = await paper.ticker("BTC/USD")
        assert (t.bid, t.ask, t.last) == (Decimal(19995), Decimal(20005), Decimal(20000))
        tick = rules.price_tick
        buy = await paper.place_order(_order(Side.BUY, "0.01"))
        want = (Decimal(20005) * Decimal("1.0005") / tick).to_integral_value(ROUND_CEILING) * tick
        assert buy.status is OrderStatus.FILLED and buy.avg_price == want
        sell = await paper.place_order(_order(Side.SELL, "0.01"))
        want = (Decimal(19995) * Decimal("0.9995") / tick).to_integral_value(ROUND_FLOOR) * tick
        assert sell.status is OrderStatus.FILLED and sell.avg_price == want
        assert buy.fee == (Decimal("0.01") * buy.avg_price * live.taker_fee).quantize(Decimal("0.00000001"))


async def test_a_limit_fills_only_when_the_market_trades_through_it(sqlite_db: Database) -> None:
    async with paper_on_live(sqlite_db, "kraken") as (paper, ctl):
        await ctl.set_price("BTC/USD", Decimal(20000))
        order = await paper.place_order(_order(Side.BUY, "0.01", limit=Decimal(19900)))
        await ctl.set_price("BTC/USD", Decimal(19900))  # touches the limit: no trade below it yet
        assert (await paper.fetch_order("BTC/USD", order.client_order_id)).status is OrderStatus.SUBMITTED  # type: ignore[union-attr]
        await ctl.set_price("BTC/USD", Decimal("19899.9"))  # traded through

        async def filled() -> bool:
            o = await paper.fetch_order("BTC/USD", order.client_order_id)
            return o is not None and o.status is OrderStatus.FILLED

        await eventually(filled, 10, "the limit filled")
        done = await paper.fetch_order("BTC/USD", order.client_order_id)
        assert done is not None and done.avg_price == Decimal(19900)  # at its limit, as a maker
        fills = (await paper.fills_since(None)).fills
        assert [(f.price, f.liquidity) for f in fills] == [(Decimal(19900), "maker")]


async def test_streamed_candles_cap_fills_by_their_volume(sqlite_db: Database) -> None:
    """A market order larger than the share of the last streamed candle's volume fills in parts."""
    async with paper_on_live(sqlite_db, "kraken", timeframe_s=60, volume_share=Decimal("0.1")) as (paper, ctl):
        await ctl.set_price("BTC/USD", Decimal(20000))
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        m = ctl.market
        p = Decimal(20000)
        await m.push_candle("BTC/USD", 60, minute - timedelta(minutes=3), p, p, p, p, Decimal("0.5"))
        await m.push_candle("BTC/USD", 60, minute - timedelta(minutes=2), p, p, p, p, Decimal("0.05"))

        async def candles(n: int) -> bool:
            return len(await paper.candles("BTC/USD", 60)) >= n

        await eventually(lambda: candles(2), 10, "two closed candles streamed")
        order = await paper.place_order(_order(Side.BUY, "0.01"))  # the last candle leaves 0.005
        assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == Decimal("0.005")
        await m.push_candle("BTC/USD", 60, minute - timedelta(minutes=1), p, p, p, p, Decimal("1"))

        async def filled() -> bool:
            o = await paper.fetch_order("BTC/USD", order.client_order_id)
            return o is not None and o.status is OrderStatus.FILLED

        await eventually(filled, 10, "the rest filled on the next candle")
        assert len((await paper.fills_since(None)).fills) == 2


async def test_the_coinbase_feed_is_keyless_and_cannot_touch_an_account(sqlite_db: Database) -> None:
    async with paper_on_live(sqlite_db, "coinbase") as (_, ctl):
        await ctl.set_price("BTC/USD", Decimal(20000))
        fake = ctl.market.fake
        assert isinstance(fake, FakeCoinbase)
        assert fake.seen_jwts == []  # not one signed request or subscription
        assert any(name == "GET /market/products" for name, _ in fake.calls)
        with pytest.raises(AuthError):
            await ctl.source.balances()
