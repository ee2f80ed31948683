"""The read side of :class:`~core.trading.views.TradingService`: views built from the database and the
engine's in-memory market data. Nothing here changes state."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select

from core.settings.settings_models import TradingSettings
from core.trading import accounting
from core.trading.books import Books
from core.trading.executor import Executor
from core.trading.intents import ClosedPosition
from core.trading.market_data import MarketData
from core.trading.state import TradingStates
from core.trading.traded import TradedPairs
from core.trading.values import OPEN_STATES, PositionStatus, market_rules
from core.trading.views import (
    BalanceView,
    HealthView,
    PairPerformance,
    PeriodPnl,
    PnlSummary,
    PositionView,
    StatusView,
    TradeView,
)
from exchanges.base import Exchange, Market
from exchanges.clock import Clock
from persistence.db import Database
from persistence.models import OrderRow, PositionRow

ZERO = Decimal(0)
CENTS = Decimal("0.01")  # percentages
# Amounts keep eight decimals: enough for a BTC-quoted account; the chat rounds them per currency.
MONEY = accounting.Q


@dataclass(frozen=True, slots=True)
class _Book:
    """What /status reads from the database, valid while the executor's version and the day hold."""

    version: int
    day: datetime
    positions: tuple[PositionRow, ...]
    realized_today: Decimal
    open_orders: int


@dataclass(frozen=True, slots=True)
class Liveness:
    """How the engine's own parts are doing, for /health (the engine knows; the queries show it)."""

    running: bool
    failed: bool
    recovery: str
    database_down_since: datetime | None = None
    database_retries: int = 0
    # every venue error: the feed's, the protection loop's and each failed try of an order send or cancel
    exchange_errors: int = 0


@dataclass(frozen=True, slots=True)
class Identity:
    """Which deployment answers: for /status and /health."""

    mode: str
    instance_id: str
    leader: Callable[[], str | None]
    started: float  # time.monotonic() when the engine was built

    def uptime_s(self) -> float:
        return time.monotonic() - self.started


def closed_position(p: PositionRow, markets: Mapping[str, Market]) -> ClosedPosition:
    """A closed position as a command's result and the kill alert show it (/close, /closeall, /kill)."""
    step, tick = market_rules(markets, p.pair)
    return ClosedPosition(pair=p.pair, qty=p.exit_qty, exit_price=accounting.exit_price(p), pnl=p.realized_pnl,
                          fees=p.entry_fees + p.exit_fees, pnl_pct=accounting.pnl_pct(p), qty_step=step,
                          price_tick=tick)


class Queries:
    """``markets`` is the engine's mapping of the venue's markets (filled when the engine starts); ``pairs``
    the traded pairs (their data ages in /status and /health)."""

    def __init__(self, *, db: Database, exchange: Exchange, market_data: MarketData, markets: Mapping[str, Market],
                 trading: TradingSettings, pairs: TradedPairs, clock: Clock, timezone: str, states: TradingStates,
                 executor: Executor, books: Books, counters: Counter[str], identity: Identity) -> None:
        self.db, self.venue, self.md, self.markets, self.trading = db, exchange, market_data, markets, trading
        self.pairs = pairs
        self.clock, self.tz, self.states, self.executor, self.books = clock, timezone, states, executor, books
        self.counters, self.identity = counters, identity
        self._book: _Book | None = None

    async def positions(self) -> list[PositionView]:
        async with self.db.read() as s:
            rows = await accounting.open_positions(s)
        return self._views(rows)

    def _views(self, rows: list[PositionRow]) -> list[PositionView]:
        views = []
        for p in rows:
            entry = accounting.entry_price(p)
            mark = self.md.price(p.pair)
            cost = p.entry_cost + p.entry_fees
            basis = cost / p.entry_qty if p.entry_qty else ZERO
            upnl = (p.qty * (mark - basis)).quantize(accounting.Q) if mark is not None else ZERO
            pct = (upnl / (p.qty * basis) * 100).quantize(CENTS) if p.qty and basis else ZERO
            step, tick = self._rules(p.pair)
            views.append(PositionView(pair=p.pair, qty=p.qty, entry_price=entry, mark_price=mark,
                                      unrealized_pnl=upnl, unrealized_pct=pct, stop=p.stop_price,
                                      take_profit=p.take_profit, opened_at=p.opened_at, strategy=p.strategy,
                                      qty_step=step, price_tick=tick))
        return views

    def _rules(self, pair: str) -> tuple[Decimal | None, Decimal | None]:
        """The pair's quantity step and price tick, when the venue's markets are loaded."""
        return market_rules(self.markets, pair)

    async def balances(self) -> list[BalanceView]:
        out = []
        quote = self.trading.quote
        for cur, bal in sorted((await self.venue.balances()).items()):
            value = None
            if cur == quote:
                value = bal.total
            else:
                price = self.md.price(f"{cur}/{quote}")
                value = (bal.total * price).quantize(MONEY) if price is not None else None
            out.append(BalanceView(cur, bal.total, bal.available, value, quote=quote))
        return out

    async def status(self) -> StatusView:
        balances = await self.venue.balances()
        equity = await self.books.equity(balances)
        quote = self.trading.quote
        cash = balances[quote].total if quote in balances else ZERO
        now = self.clock.now()
        book = await self._status_book(accounting.period_start(now, "day", self.tz))
        positions = tuple(self._views(list(book.positions)))  # marks are always the latest
        unrealized = sum((p.unrealized_pnl for p in positions), ZERO)
        realized_today, open_orders = book.realized_today, book.open_orders
        today = realized_today + unrealized
        day_start = equity - today  # what the account was worth when the day began (as far as PnL tells)
        today_pct = (today / day_start * 100).quantize(CENTS) if day_start > 0 else None
        state, who = self.states.current, self.identity
        return StatusView(state=state.state, state_reason=state.reason, state_changed_by=state.changed_by,
                          state_changed_at=state.changed_at, mode=who.mode, venue=self.venue.name, quote=quote,
                          equity=equity.quantize(MONEY), cash=cash.quantize(MONEY), positions=positions,
                          today_pnl=today.quantize(MONEY), today_pnl_pct=today_pct, unrealized=unrealized,
                          data_age_s={p: self.md.age_s(p, now) for p in self.pairs.active}, leader=who.leader(),
                          instance_id=who.instance_id, uptime_s=who.uptime_s(), open_orders=open_orders,
                          paper_label=self.trading.paper_label)

    async def _status_book(self, day: datetime) -> _Book:
        """Open positions, today's realized PnL and the open-order count: read in one transaction,
        then reused until the executor reports a change to orders or positions (its ``version``,
        bumped on every write to them) or the day rolls over. /status is the command people send
        most, and most of the time nothing has changed between two of them."""
        version = self.executor.version
        book = self._book
        if book is not None and book.version == version and book.day == day:
            return book
        async with self.db.read() as s:
            positions = tuple(await accounting.open_positions(s))
            closed_today = await accounting.closed_positions(s, day)
            open_orders = int((await s.exec(select(func.count()).select_from(OrderRow).where(
                col(OrderRow.status).in_(OPEN_STATES)))).one())
        book = _Book(version, day, positions, sum((p.realized_pnl for p in closed_today), ZERO), open_orders)
        if self.executor.version == version:  # not if a write landed while we read
            self._book = book
        return book

    async def pnl(self, period: str, positions: tuple[PositionView, ...] | None = None) -> PnlSummary:
        now = self.clock.now()
        start = None
        if period == "today":
            start = accounting.period_start(now, "day", self.tz)
        elif period == "week":
            start = accounting.period_start(now, "week", self.tz)
        elif period == "month":
            start = accounting.period_start(now, "month", self.tz)
        elif period != "all":
            raise ValueError(f"unknown period {period!r}")
        async with self.db.read() as s:
            closed = await accounting.closed_positions(s, start)
            points = await accounting.equity_points(s, start)
        st = accounting.trade_stats(closed)
        shown = positions if positions is not None else await self.positions()
        unrealized = sum((p.unrealized_pnl for p in shown), ZERO)
        dd = accounting.max_drawdown(points)
        ranked = sorted(st.by_pair.items(), key=lambda kv: kv[1][1])
        return PnlSummary(period=period, start=start, realized=st.realized.quantize(MONEY),
                          unrealized=unrealized.quantize(MONEY), fees=st.fees.quantize(MONEY), trades=st.trades,
                          wins=st.wins, losses=st.losses, win_rate=st.win_rate, profit_factor=st.profit_factor,
                          expectancy=st.expectancy.quantize(MONEY) if st.expectancy is not None else None,
                          max_drawdown=dd.amount.quantize(MONEY), max_drawdown_pct=dd.pct,
                          drawdown_start=dd.start, drawdown_end=dd.end,
                          best_pair=ranked[-1][0] if ranked else None, worst_pair=ranked[0][0] if ranked else None,
                          quote=self.trading.quote)

    async def periods(self, unit: str, count: int) -> list[PeriodPnl]:
        now = self.clock.now()
        first = accounting.period_start(now, unit, self.tz, back=count - 1)
        async with self.db.read() as s:
            closed = await accounting.closed_positions(s, first)
        out = []
        for i in range(count - 1, -1, -1):
            start = accounting.period_start(now, unit, self.tz, back=i)
            end = accounting.period_start(now, unit, self.tz, back=i - 1) if i > 0 else now + timedelta(seconds=1)
            inside = [p for p in closed if p.closed_at is not None and start <= p.closed_at < end]
            out.append(PeriodPnl(start=start.astimezone(ZoneInfo(self.tz)).date(),
                                 realized=sum((p.realized_pnl for p in inside), ZERO).quantize(MONEY),
                                 trades=len(inside),
                                 fees=sum((p.entry_fees + p.exit_fees for p in inside), ZERO).quantize(MONEY),
                                 quote=self.trading.quote))
        return out

    async def trades(self, count: int) -> list[TradeView]:
        """The latest closed trades, newest first (open positions are /positions)."""
        async with self.db.read() as s:
            stmt = select(PositionRow).where(PositionRow.status == PositionStatus.CLOSED)
            stmt = stmt.order_by(col(PositionRow.closed_at).desc(), col(PositionRow.id).desc()).limit(count)
            rows = (await s.exec(stmt)).all()
        views = []
        for p in rows:
            step, tick = self._rules(p.pair)
            views.append(TradeView(pair=p.pair, qty=p.entry_qty, entry_price=accounting.entry_price(p),
                                   exit_price=accounting.exit_price(p), pnl=p.realized_pnl,
                                   pnl_pct=accounting.pnl_pct(p), fees=p.entry_fees + p.exit_fees,
                                   opened_at=p.opened_at, closed_at=p.closed_at, exit_reason=p.exit_reason,
                                   qty_step=step, price_tick=tick))
        return views

    async def performance(self) -> list[PairPerformance]:
        async with self.db.read() as s:
            st = accounting.trade_stats(await accounting.closed_positions(s))
        out = [PairPerformance(pair, t, pnl.quantize(MONEY),
                               (Decimal(w) / t).quantize(Decimal("0.0001")) if t else None)
               for pair, (t, pnl, w) in st.by_pair.items()]
        return sorted(out, key=lambda x: x.pnl, reverse=True)

    async def health(self, liveness: Liveness) -> HealthView:
        state = self.states.state
        comps = {"engine": "running" if liveness.running else "stopped", "state": str(state),
                 "recovery": liveness.recovery}
        if liveness.database_down_since is not None:
            since = liveness.database_down_since.astimezone(ZoneInfo(self.tz))  # local, as every time in chat
            comps["database"] = f"unreachable since {since:%H:%M:%S %Z} ({liveness.database_retries} retries)"
        now = self.clock.now()
        for p in self.pairs.active:
            age = self.md.age_s(p, now)
            comps[f"data:{p}"] = "no data yet" if age is None else f"{age:.0f}s old"
        counters = dict(self.counters)
        if liveness.exchange_errors:
            counters["exchange_errors"] = liveness.exchange_errors
        counters.update({f"rejected:{k}": v for k, v in self.md.rejected.items()})
        who = self.identity
        return HealthView(ok=liveness.running and not liveness.failed and liveness.database_down_since is None,
                          components=comps, counters=counters, rss_mb=_rss_mb(), leader=who.leader(),
                          instance_id=who.instance_id, uptime_s=who.uptime_s())


def _rss_mb() -> float | None:
    """This process's resident memory, when psutil is installed (it is optional)."""
    try:
        import psutil  # type: ignore[import-untyped]  # psutil ships no type information
    except ImportError:
        return None
    return float(psutil.Process().memory_info().rss) / 1e6
