"""The shared venue contract, run against the paper venue on SQLite and on PostgreSQL, and against one
keeping its state in memory (a backtest's).

:class:`PaperController` and :func:`paper_venue` are also what the paper venue's own tests use to
drive it: the market moves by feeding candles on a simulated hourly timeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from exchanges.base import Candle
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from exchanges.paper.store import MemoryPaperStore
from persistence.db import Database
from tests.exchanges.contract import ExchangeContract, venue_fixture

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = 3600


class PaperController:
    """Moves the paper market by feeding it candles, one simulated hour apart."""

    def __init__(self, paper: PaperExchange, clock: SimClock, volume: Decimal = Decimal(1000)) -> None:
        self.paper, self.clock, self.volume = paper, clock, volume
        self.next_ts = clock.now()
        self.closes: dict[str, Decimal] = {}

    async def candle(self, pair: str, open_: Decimal, high: Decimal, low: Decimal, close: Decimal,
                     volume: Decimal | None = None, ts: datetime | None = None) -> Candle:
        """Feed one candle (at the next hour unless ``ts`` is given) and move the clock to its close."""
        ts = ts or self.next_ts
        c = Candle(pair=pair, timeframe_s=HOUR, ts=ts, open=open_, high=high, low=low, close=close,
                   volume=self.volume if volume is None else volume)
        self.next_ts = max(self.next_ts, ts + timedelta(seconds=HOUR))
        if ts + timedelta(seconds=HOUR) > self.clock.now():
            self.clock.advance_to(ts + timedelta(seconds=HOUR))
        self.closes[pair] = close
        await self.paper.on_candle(c)
        return c

    async def set_price(self, pair: str, price: Decimal) -> None:
        """A candle from the last close to ``price``; its range crosses every limit in between."""
        price = Decimal(price)
        prev = self.closes.get(pair, price)
        await self.candle(pair, prev, max(prev, price), min(prev, price), price)

    async def set_balance(self, currency: str, amount: Decimal) -> None:
        await self.paper.set_balance(currency, Decimal(amount))

    async def settle(self) -> None:
        """A flat candle at the last price for every pair seen (fills what waits for a next open)."""
        for pair, close in list(self.closes.items()):
            await self.candle(pair, close, close, close, close)

    async def add_candle(self, pair: str, timeframe_s: int, ts: datetime, o: Decimal, h: Decimal, low: Decimal,
                         c: Decimal, v: Decimal) -> None:
        if timeframe_s == HOUR and ts >= self.next_ts:
            await self.candle(pair, o, h, low, c, v, ts=ts)


@asynccontextmanager
async def paper_venue(db: Database, **options: Any) -> AsyncIterator[tuple[PaperExchange, PaperController]]:
    """A started paper venue trading BTC/USD and ETH/USD, and its controller."""
    clock = options.pop("clock", None) or SimClock(START)
    markets = options.pop("markets", None) or {"BTC/USD": MarketRules(), "ETH/USD": MarketRules()}
    options.setdefault("starting_balances", {"USD": Decimal(10000)})
    paper = PaperExchange(db, markets, clock=clock, **options)
    await paper.start()
    try:
        yield paper, PaperController(paper, clock)
    finally:
        await paper.stop()


class TestPaperContract(ExchangeContract):
    venue = venue_fixture(paper_venue)


@asynccontextmanager
async def memory_paper_venue() -> AsyncIterator[tuple[PaperExchange, PaperController]]:
    """:func:`paper_venue` with its state in memory: no database at all (the one handed is never opened)."""
    async with paper_venue(Database("sqlite:///nowhere/never-opened.db"), store=MemoryPaperStore()) as pair:
        yield pair


class TestMemoryPaperContract(ExchangeContract):
    venue = venue_fixture(memory_paper_venue)
