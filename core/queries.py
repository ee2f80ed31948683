"""The read side of :class:`~core.views.TradingService`: views built from the database and the
engine's in-memory market data. Nothing here changes state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlmodel import col, func, select

from core import accounting
from core.intents import ClosedPosition
from core.views import BalanceView, HealthView, PairPerformance, PeriodPnl, PnlSummary, PositionView, StatusView, TradeView
from core.executor import OPEN_STATES
from persistence.models import OrderRow, PositionRow

if TYPE_CHECKING:
    from core.engine import Engine

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


def closed_position(p: PositionRow) -> ClosedPosition:
    """A closed position as a command's result shows it (/close, /closeall, /kill)."""
    return ClosedPosition(pair=p.pair, qty=p.exit_qty, exit_price=accounting.exit_price(p), pnl=p.realized_pnl,
                          fees=p.entry_fees + p.exit_fees, pnl_pct=accounting.pnl_pct(p))


class Queries:
    def __init__(self, engine: "Engine") -> None:
        self.e = engine
        self._book: _Book | None = None

    async def positions(self) -> list[PositionView]:
        async with self.e.db.read() as s:
            rows = await accounting.open_positions(s)
        return self._views(rows)

    def _views(self, rows: list[PositionRow]) -> list[PositionView]:
        views = []
        for p in rows:
            entry = accounting.entry_price(p)
            mark = self.e.md.price(p.pair)
            cost = p.entry_cost + p.entry_fees
            basis = cost / p.entry_qty if p.entry_qty else ZERO
            upnl = (p.qty * (mark - basis)).quantize(accounting.Q) if mark is not None else ZERO
            pct = (upnl / (p.qty * basis) * 100).quantize(CENTS) if p.qty and basis else ZERO
            step, tick = self._rules(p.pair)
            views.append(PositionView(pair=p.pair, qty=p.qty, entry_price=entry, mark_price=mark, unrealized_pnl=upnl,
                                      unrealized_pct=pct, stop=p.stop_price, take_profit=p.take_profit,
                                      opened_at=p.opened_at, strategy=p.strategy, qty_step=step, price_tick=tick))
        return views

    def _rules(self, pair: str) -> tuple[Decimal | None, Decimal | None]:
        """The pair's quantity step and price tick, when the venue's markets are loaded."""
        market = self.e.markets.get(pair) if self.e.markets else None
        return (market.qty_step, market.price_tick) if market is not None else (None, None)

    async def balances(self) -> list[BalanceView]:
        out = []
        for cur, bal in sorted((await self.e.venue.balances()).items()):
            value = None
            if cur == self.e.trading.quote:
                value = bal.total
            else:
                pair = f"{cur}/{self.e.trading.quote}"
                price = self.e.md.price(pair)
                value = (bal.total * price).quantize(MONEY) if price is not None else None
            out.append(BalanceView(cur, bal.total, bal.available, value, quote=self.e.trading.quote))
        return out

    async def status(self) -> StatusView:
        e = self.e
        balances = await e.venue.balances()
        equity = await e.equity(balances)
        cash = balances[e.trading.quote].total if e.trading.quote in balances else ZERO
        now = e.clock.now()
        book = await self._status_book(accounting.period_start(now, "day", e.tz))
        positions = tuple(self._views(list(book.positions)))  # marks are always the latest
        unrealized = sum((p.unrealized_pnl for p in positions), ZERO)
        realized_today, open_orders = book.realized_today, book.open_orders
        today = realized_today + unrealized
        day_start = equity - today  # what the account was worth when the day began (as far as PnL tells)
        today_pct = (today / day_start * 100).quantize(CENTS) if day_start > 0 else None
        return StatusView(state=e.state.state, state_reason=e.state.reason, state_changed_by=e.state.changed_by,
                          state_changed_at=e.state.changed_at, mode=e.mode, venue=e.venue.name, quote=e.trading.quote,
                          equity=equity.quantize(MONEY), cash=cash.quantize(MONEY), positions=positions,
                          today_pnl=today.quantize(MONEY), today_pnl_pct=today_pct, unrealized=unrealized,
                          data_age_s={p: e.md.age_s(p, now) for p in e.pairs}, leader=e.leader(),
                          instance_id=e.instance_id, uptime_s=e.uptime_s(), open_orders=open_orders)

    async def _status_book(self, day: datetime) -> _Book:
        """Open positions, today's realized PnL and the open-order count: read in one transaction,
        then reused until the executor reports a change to orders or positions (its ``version``,
        bumped on every write to them) or the day rolls over. /status is the command people send
        most, and most of the time nothing has changed between two of them."""
        e = self.e
        version = e.executor.version
        book = self._book
        if book is not None and book.version == version and book.day == day:
            return book
        async with e.db.read() as s:
            positions = tuple(await accounting.open_positions(s))
            closed_today = await accounting.closed_positions(s, day)
            open_orders = int((await s.exec(select(func.count()).select_from(OrderRow).where(  # type: ignore[call-overload]
                col(OrderRow.status).in_(OPEN_STATES)))).one())
        book = _Book(version, day, positions, sum((p.realized_pnl for p in closed_today), ZERO), open_orders)
        if e.executor.version == version:  # not if a write landed while we read
            self._book = book
        return book

    async def pnl(self, period: str, positions: tuple[PositionView, ...] | None = None) -> PnlSummary:
        e = self.e
        now = e.clock.now()
        start = None
        if period == "today":
            start = accounting.period_start(now, "day", e.tz)
        elif period == "week":
            start = accounting.period_start(now, "week", e.tz)
        elif period == "month":
            start = accounting.period_start(now, "month", e.tz)
        elif period != "all":
            raise ValueError(f"unknown period {period!r}")
        async with e.db.read() as s:
            closed = await accounting.closed_positions(s, start)
            points = await accounting.equity_points(s, start)
        st = accounting.trade_stats(closed)
        unrealized = sum((p.unrealized_pnl for p in (positions if positions is not None else await self.positions())), ZERO)
        dd = accounting.max_drawdown(points)
        ranked = sorted(st.by_pair.items(), key=lambda kv: kv[1][1])
        return PnlSummary(period=period, start=start, realized=st.realized.quantize(MONEY),
                          unrealized=unrealized.quantize(MONEY), fees=st.fees.quantize(MONEY), trades=st.trades,
                          wins=st.wins, losses=st.losses, win_rate=st.win_rate, profit_factor=st.profit_factor,
                          expectancy=st.expectancy.quantize(MONEY) if st.expectancy is not None else None,
                          max_drawdown=dd.amount.quantize(MONEY), max_drawdown_pct=dd.pct,
                          drawdown_start=dd.start, drawdown_end=dd.end,
                          best_pair=ranked[-1][0] if ranked else None, worst_pair=ranked[0][0] if ranked else None,
                          quote=e.trading.quote)

    async def periods(self, unit: str, count: int) -> list[PeriodPnl]:
        e = self.e
        now = e.clock.now()
        first = accounting.period_start(now, unit, e.tz, back=count - 1)
        async with e.db.read() as s:
            closed = await accounting.closed_positions(s, first)
        out = []
        for i in range(count - 1, -1, -1):
            start = accounting.period_start(now, unit, e.tz, back=i)
            end = accounting.period_start(now, unit, e.tz, back=i - 1) if i > 0 else now + timedelta(seconds=1)
            inside = [p for p in closed if p.closed_at is not None and start <= p.closed_at < end]
            out.append(PeriodPnl(start=start.astimezone(accounting.ZoneInfo(e.tz)).date(),
                                 realized=sum((p.realized_pnl for p in inside), ZERO).quantize(MONEY),
                                 trades=len(inside),
                                 fees=sum((p.entry_fees + p.exit_fees for p in inside), ZERO).quantize(MONEY),
                                 quote=e.trading.quote))
        return out

    async def trades(self, count: int) -> list[TradeView]:
        """The latest closed trades, newest first (open positions are /positions)."""
        async with self.e.db.read() as s:
            stmt = select(PositionRow).where(PositionRow.status == "closed")
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
        async with self.e.db.read() as s:
            st = accounting.trade_stats(await accounting.closed_positions(s))
        out = [PairPerformance(pair, t, pnl.quantize(MONEY), (Decimal(w) / t).quantize(Decimal("0.0001")) if t else None)
               for pair, (t, pnl, w) in st.by_pair.items()]
        return sorted(out, key=lambda x: x.pnl, reverse=True)

    async def health(self) -> HealthView:
        e = self.e
        comps = {"engine": "running" if e._running else "stopped", "state": e.state.state}
        rec = e.recovery
        comps["recovery"] = (f"done in {rec.took_s:.1f}s" if rec.done.is_set() and rec.took_s is not None
                             else "waiting for prices" if rec.prepared.is_set() else "running")
        if e.watch.since is not None:
            since = e.watch.since.astimezone(accounting.ZoneInfo(e.tz))  # local, as every time in chat
            comps["database"] = f"unreachable since {since:%H:%M:%S %Z} ({e.watch.retries} retries)"
        now = e.clock.now()
        for p in e.pairs:
            age = e.md.age_s(p, now)
            comps[f"data:{p}"] = "no data yet" if age is None else f"{age:.0f}s old"
        counters = dict(e.counters)
        counters.update({f"rejected:{k}": v for k, v in e.md.rejected.items()})
        rss = None
        try:
            import psutil

            rss = psutil.Process().memory_info().rss / 1e6
        except Exception:  # noqa: BLE001
            pass
        return HealthView(ok=e._running and e.failed is None and not e.watch.down, components=comps,
                          counters=counters, rss_mb=rss, leader=e.leader(), instance_id=e.instance_id,
                          uptime_s=e.uptime_s())
