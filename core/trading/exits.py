"""Exits and protection: selling a position, and the stops, take-profits and trailing stops that
trigger it. Also the engine's cache of the open or pending position per pair, which counts an entry
being placed (from its checks until it is sent, :meth:`Exits.entering`) as a pending position: a
``/pairs remove`` that lands meanwhile keeps the pair until it settles instead of dropping it under a
position nobody would then watch, and a second entry into the pair is refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal

from sqlmodel import col, select

from core.trading.executor import Executor
from core.trading.market_data import MarketData
from core.trading.sells import NoSell, SellAsk, write_sells
from core.trading.state import KILLED, TradingStates
from core.trading.values import OrderPurpose, PositionStatus
from exchanges.base import Market
from persistence.db import Database
from persistence.models import PositionRow

ZERO = Decimal(0)
# built once: read again after every change to orders or positions
_LIVE_POSITIONS = (select(PositionRow).where(col(PositionRow.status).in_((PositionStatus.PENDING, PositionStatus.OPEN)))
                   .order_by(col(PositionRow.id)))


class Exits:
    """``markets`` is the engine's mapping of the venue's markets (filled when the engine starts)."""

    def __init__(self, *, db: Database, executor: Executor, states: TradingStates, market_data: MarketData,
                 markets: Mapping[str, Market], counters: Counter[str]) -> None:
        self.db, self.executor, self.states, self.md, self.markets = db, executor, states, market_data, markets
        self.counters = counters
        self._exiting: set[int] = set()
        self._cache: tuple[int, dict[str, PositionRow]] | None = None
        self._entering: Counter[str] = Counter()

    @contextmanager
    def entering(self, pair: str) -> Iterator[None]:
        """Held by an entry (the strategy's or a /buy) from its checks until it is sent; a removal sees
        the entry as a pending position meanwhile. The entry re-checks that its pair is still traded and
        not being removed after writing its order and before sending it, so a removal that completed
        before the hold began is caught there."""
        self._entering[pair] += 1
        try:
            yield
        finally:
            self._entering[pair] -= 1
            if self._entering[pair] <= 0:
                del self._entering[pair]

    async def open_position(self, pair: str) -> PositionRow | None:
        """The pair's pending or open position. Cached until the executor reports a change, so a
        quiet candle costs no position query."""
        version = self.executor.version
        if self._cache is None or self._cache[0] != version:
            async with self.db.read() as s:
                rows = (await s.exec(_LIVE_POSITIONS)).all()
            self._cache = (version, {r.pair: r for r in rows})
        found = self._cache[1].get(pair)
        if found is None and self._entering[pair] > 0:  # its row is being written: a pending position
            return PositionRow(pair=pair, status=PositionStatus.PENDING)
        return found

    async def exit_position(self, pos: PositionRow, *, purpose: OrderPurpose, reason: str, by: str) -> bool:
        """Sell all the position holds at market, unless trading is killed (the kill flattens with its
        own orders) or another order is already selling it (:func:`~core.trading.sells.write_sells`
        checks that, and what the position holds, in the database under the position's lock)."""
        assert pos.id is not None
        if pos.id in self._exiting or pos.qty <= 0 or self.states.state == KILLED:
            return False
        self._exiting.add(pos.id)  # in memory only to spare the database a second try on this loop
        try:
            (row,) = await write_sells(self.executor, [SellAsk(position_id=pos.id, purpose=purpose, reason=reason,
                                                               by=by)], self.markets)
            if isinstance(row, NoSell):
                if row.busy:
                    self.counters["exits_already_in_progress"] += 1
                return False
            await self.executor.send(row)
            await self.executor.poll_fills()
            return True
        finally:
            self._exiting.discard(pos.id)

    async def protect(self, pair: str, *, low: Decimal | None = None, high: Decimal | None = None) -> None:
        """Raise a trailing stop with the high, then exit on a stop below ``low`` or a target below
        ``high`` (a candle's range, or the latest price)."""
        pos = await self.open_position(pair)
        if pos is None or pos.status != PositionStatus.OPEN:
            return
        price = self.md.price(pair)
        if price is None:
            return
        low = low if low is not None else price
        high = high if high is not None else price
        if pos.trailing_pct and high > (pos.high_water or ZERO):
            new_stop = self.markets[pair].round_price(high * (1 - pos.trailing_pct))
            async with self.executor.writing() as s:
                fresh = await s.get(PositionRow, pos.id)
                if fresh is not None:
                    fresh.high_water = high
                    if fresh.stop_price is None or new_stop > fresh.stop_price:
                        fresh.stop_price = new_stop
                    s.add(fresh)
                    pos = fresh
        if pos.stop_price is not None and low <= pos.stop_price:
            purpose = OrderPurpose.TRAILING if pos.trailing_pct else OrderPurpose.STOP
            await self.exit_position(pos, purpose=purpose, reason=f"price {low} <= stop {pos.stop_price}",
                                     by="protection")
        elif pos.take_profit is not None and high >= pos.take_profit:
            await self.exit_position(pos, purpose=OrderPurpose.TAKE_PROFIT,
                                     reason=f"price {high} >= target {pos.take_profit}", by="protection")
