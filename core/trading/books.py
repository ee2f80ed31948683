"""The account as the engine values it: equity, the portfolio the risk manager judges, trade
statistics, and the equity snapshot each candle leaves (with the replay cursor)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import select

from core.settings.settings_models import TradingSettings
from core.trading import accounting
from core.trading.market_data import MarketData
from core.trading.risk import Portfolio, TradeStats
from core.trading.traded import TradedPairs
from core.trading.values import PositionStatus
from exchanges.base import Balance, Candle, Exchange
from exchanges.clock import Clock
from persistence.db import Database
from persistence.models import EquitySnapshot, PositionRow, RuntimeValue

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Mark:
    """Equity after a candle, with what the drawdown breakers compare it to."""

    equity: Decimal
    day_start_equity: Decimal
    peak_equity: Decimal


def equity_of(balances: Mapping[str, Balance], quote: str, pairs: tuple[str, ...], md: MarketData) -> Decimal:
    """The quote balance plus every traded base currency at its latest price (none yet: not counted)."""
    total = balances[quote].total if quote in balances else ZERO
    for pair in pairs:
        base = pair.split("/")[0]
        if base in balances and balances[base].total:
            total += balances[base].total * (md.price(pair) or ZERO)
    return total


@dataclass(slots=True)
class _Tally:
    """The closed trades' totals, added to as positions close (in the order they closed, the order
    :func:`~core.trading.accounting.trade_stats` sums them in), so an entry never re-reads every
    closed position. ``ids`` are the positions counted: one closed while the totals were being read
    is in them already when the executor reports it."""

    ids: set[int]
    closed: int = 0
    wins: int = 0
    gross_win: Decimal = ZERO
    losses: Decimal = ZERO  # the sum of the non-positive PnLs, as accounting.trade_stats adds them

    def add(self, pos: PositionRow) -> None:
        if pos.id is not None:
            if pos.id in self.ids:
                return
            self.ids.add(pos.id)
        self.closed += 1
        if pos.realized_pnl > 0:
            self.wins += 1
            self.gross_win += pos.realized_pnl
        else:
            self.losses += pos.realized_pnl

    def stats(self) -> TradeStats:
        """Equal to ``accounting.trade_stats`` over the same positions (the same sums, in the same order)."""
        lost = self.closed - self.wins
        return TradeStats(self.closed, self.wins, (self.gross_win / self.wins) if self.wins else ZERO,
                          (-self.losses / lost) if lost else ZERO)


class Books:
    """``pairs``: the traded pairs, whose base currencies count in the equity."""

    def __init__(self, *, db: Database, exchange: Exchange, market_data: MarketData, trading: TradingSettings,
                 pairs: TradedPairs, clock: Clock, timezone: str, counters: Counter[str]) -> None:
        self.db, self.venue, self.md, self.trading, self.clock = db, exchange, market_data, trading, clock
        self.pairs = pairs
        self.tz = timezone
        self.counters = counters
        self._tally: _Tally | None = None
        self._day_start: tuple[datetime, Decimal] | None = None
        self._day_span: tuple[datetime, datetime] | None = None  # the current day's start and the next's
        self._peak_equity = ZERO
        self._kept: list[tuple[datetime, Decimal]] | None = None  # the marks, when kept in memory (keep_marks)
        self._cursors: dict[str, datetime] = {}  # the last candle marked per pair, while keeping marks

    def keep_marks(self) -> None:
        """Keep each candle's equity mark in memory (:meth:`kept_marks`) instead of writing a snapshot and the
        replay cursor to the database.

        For backtests only: their database is thrown away after the run, which reads its equity curve
        from here, so writing 20,000 snapshots to read them back buys nothing. The service never does
        this: a restart resumes the replay after the last stored cursor, which must be the last candle
        whose effects were stored (fills, orders and positions are written as they happen either way),
        and /pnl, the reports and the charts read the stored snapshots."""
        if self._kept is None:
            self._kept = []

    def kept_marks(self) -> list[tuple[datetime, Decimal]]:
        """The marks kept since :meth:`keep_marks`, oldest first: (time of the mark, equity)."""
        if self._kept is None:
            raise RuntimeError("marks are stored in the database, not kept: see keep_marks")
        return self._kept

    async def equity(self, balances: Mapping[str, Balance] | None = None) -> Decimal:
        balances = balances if balances is not None else await self.venue.balances()
        return equity_of(balances, self.trading.quote, self.pairs.active, self.md)

    async def portfolio(self) -> Portfolio:
        balances = await self.venue.balances()
        cash = balances.get(self.trading.quote)
        exposure: dict[str, Decimal] = {}
        async with self.db.read() as s:
            positions = await accounting.open_positions(s)
            pending = (await s.exec(select(PositionRow).where(PositionRow.status == PositionStatus.PENDING))).all()
        for p in positions:
            exposure[p.pair] = exposure.get(p.pair, ZERO) + p.qty * (self.md.price(p.pair) or accounting.entry_price(p))
        for p in pending:
            exposure.setdefault(p.pair, Decimal("0.00000001"))
        return Portfolio(equity=await self.equity(balances), cash_available=cash.available if cash else ZERO,
                         exposure_by_pair=exposure, open_positions=len(positions) + len(pending))

    async def trade_stats(self) -> TradeStats:
        """Statistics of the closed trades: read once, then kept up to date by :meth:`count_closed`."""
        if self._tally is None:
            async with self.db.read() as s:
                closed = await accounting.closed_positions(s)
            tally = _Tally(ids=set())
            for pos in closed:
                tally.add(pos)
            self._tally = tally
        return self._tally.stats()

    def count_closed(self, positions: list[PositionRow]) -> None:
        """Add positions the executor's fills closed (oldest first) to the statistics; one counted
        already (read with the others) is skipped."""
        if self._tally is not None:
            for pos in positions:
                self._tally.add(pos)

    async def restore_marks(self) -> None:
        """The equity peak so far, from the stored snapshots (after a restart)."""
        async with self.db.read() as s:
            points = await accounting.equity_points(s)
        if points:
            self._peak_equity = max(v for _, v in points)

    async def mark(self, candle: Candle | None = None) -> Mark:
        """Snapshot equity and, in the same transaction, remember the candle just processed (the
        replay resumes after it)."""
        balances = await self.venue.balances()
        equity = await self.equity(balances)
        quote = self.trading.quote
        cash = balances[quote].total if quote in balances else ZERO
        now = self.clock.now()
        if self._kept is not None:
            self._kept_mark(candle, now, equity)
        else:
            await self._stored_mark(candle, now, equity, cash)
        self._peak_equity = max(self._peak_equity, equity)
        day = self._day_of(now)
        if self._day_start is None or self._day_start[0] != day:
            self._day_start = (day, equity)
        return Mark(equity, self._day_start[1], self._peak_equity)

    def _day_of(self, now: datetime) -> datetime:
        """The start of the service's day holding ``now`` (computed once a day, not once a candle)."""
        span = self._day_span
        if span is None or not span[0] <= now < span[1]:
            span = self._day_span = (accounting.period_start(now, "day", self.tz),
                                     accounting.period_start(now, "day", self.tz, back=-1))
        return span[0]

    def _kept_mark(self, candle: Candle | None, now: datetime, equity: Decimal) -> None:
        assert self._kept is not None
        if candle is not None:
            last = self._cursors.get(candle.pair)
            if last is not None and last >= candle.ts:
                self.counters["candle_marks_repeated"] += 1
                return
            self._cursors[candle.pair] = candle.ts
        self._kept.append((now, equity))

    async def _stored_mark(self, candle: Candle | None, now: datetime, equity: Decimal, cash: Decimal) -> None:
        async with self.db.session() as s:
            row = None
            if candle is not None:
                key = f"last_candle:{candle.pair}"
                row = await s.get(RuntimeValue, key) or RuntimeValue(key=key, value="")
            if row is not None and row.value and candle is not None and \
                    datetime.fromisoformat(row.value) >= candle.ts:
                # This candle's mark was committed already: the database went away while answering
                # the commit, and the candle was retried. Marking it again would add a second snapshot.
                self.counters["candle_marks_repeated"] += 1
            else:
                s.add(EquitySnapshot(ts=now, equity=equity, cash=cash, positions_value=equity - cash))
                if row is not None and candle is not None:
                    row.value = candle.ts.isoformat()
                    row.updated_at = now
                    s.add(row)
