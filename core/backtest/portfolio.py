"""Engine-mode results for one pair or a portfolio of pairs, read back from the run's database.

A portfolio run is one engine trading every pair at once, as the service does with several
``trading.pairs``: one cash balance in the common quote currency, the risk manager's per-pair and
total exposure limits and its open-positions limit over all pairs, one equity curve. Nothing here
decides a trade; it only reads what the engine recorded:

- per pair, a :class:`~core.backtest.model.BacktestResult` with that pair's trades (its bars index
  that pair's candles) and the portfolio's equity at that pair's candle closes;
- for the portfolio, a result with every trade and the equity at each close time, after the last
  pair's candle of that time (the engine snapshots equity after each candle it processes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlmodel import col, select

from core.backtest.data import Bars
from core.backtest.model import BacktestResult, RunSpec, Trade
from core.settings.config import Settings
from core.trading import accounting
from core.trading.engine import Engine
from persistence.db import Database
from persistence.models import PositionRow

ZERO = Decimal(0)
CENTS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class EngineRun:
    """``results`` in the order the pairs were given; ``portfolio`` is ``results[0]`` for one pair."""

    results: tuple[BacktestResult, ...]
    portfolio: BacktestResult


def check_series(series: Sequence[Bars]) -> None:
    """A portfolio's candles: distinct pairs, one timeframe, one quote currency (ValueError otherwise)."""
    if not series:
        raise ValueError("a backtest needs at least one pair")
    pairs = [b.pair for b in series]
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"a pair is given twice: {', '.join(pairs)}")
    frames = {b.timeframe_s for b in series}
    if len(frames) > 1:
        listed = ", ".join(f"{b.pair} {b.timeframe_s}s" for b in series)
        raise ValueError(f"the pairs' candles have different timeframes: {listed}")
    quotes = {b.pair.split("/")[1] for b in series}
    if len(quotes) > 1:
        raise ValueError("a portfolio counts equity in one quote currency; these pairs quote "
                         + ", ".join(sorted(quotes)))


def start_equity(settings: Settings, bars: Bars | Sequence[Bars], at: int = 0) -> Decimal:
    """Starting balances valued in the quote currency, each base at its pair's first close (candle ``at``'s
    close: the first one traded after a warm-up)."""
    series = (bars,) if isinstance(bars, Bars) else tuple(bars)
    quote = series[0].pair.split("/")[1]
    first = {b.pair.split("/")[0]: b.price(at, "close") for b in series}
    total = ZERO
    for currency, amount in settings.paper.starting_balances.items():
        if currency == quote:
            total += amount
        elif currency in first:
            total += amount * first[currency]
    return total


async def collect(engine: Engine, db: Database, series: tuple[Bars, ...], spec: RunSpec,
                  settings: Settings) -> EngineRun:
    async with db.session() as s:
        rows = (await s.exec(select(PositionRow).where(col(PositionRow.status).in_(("open", "closed")))
                             .order_by(col(PositionRow.id)))).all()
    points = engine.books.kept_marks()
    start = start_equity(settings, series)
    end = points[-1][1] if points else start
    snap_ts = np.fromiter((int(t.timestamp()) for t, _ in points), dtype=np.int64, count=len(points))
    snap_eq = np.fromiter((float(v) for _, v in points), dtype=np.float64, count=len(points))
    results = []
    for bars in series:
        trades = [_trade(r, bars, spec) for r in rows if r.pair == bars.pair]
        results.append(_result(bars, trades, snap_ts, snap_eq, start, end))
    if len(series) == 1:
        portfolio = results[0]
    else:
        portfolio = _portfolio(series, results, snap_ts, snap_eq, start, end)
    for result in (*results, portfolio) if portfolio is not results[0] else results:
        _notes(result, engine)
    return EngineRun(results=tuple(results), portfolio=portfolio)


def _last_per_time(ts: np.ndarray, eq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last snapshot of each close time (several pairs' candles close together)."""
    if ts.size == 0:
        return ts, eq
    last = np.r_[ts[1:] != ts[:-1], True]
    return ts[last], eq[last]


def _result(bars: Bars, trades: list[Trade], snap_ts: np.ndarray, snap_eq: np.ndarray, start: Decimal,
            end: Decimal) -> BacktestResult:
    ts, eq = _last_per_time(snap_ts, snap_eq)
    mine = np.isin(ts, bars.arrays.ts + bars.timeframe_s)
    in_position = np.zeros(len(bars), dtype=np.bool_)
    for t in trades:
        in_position[t.entry_bar:(t.exit_bar if t.exit_bar is not None else len(bars))] = True
    return BacktestResult(mode="engine", pair=bars.pair, timeframe_s=bars.timeframe_s, start_equity=start,
                          end_equity=end, trades=trades, equity_ts=ts[mine], equity=eq[mine],
                          in_position=in_position, bars=len(bars))


def _portfolio(series: tuple[Bars, ...], results: list[BacktestResult], snap_ts: np.ndarray, snap_eq: np.ndarray,
               start: Decimal, end: Decimal) -> BacktestResult:
    ts, eq = _last_per_time(snap_ts, snap_eq)
    tf = series[0].timeframe_s
    times = np.unique(np.concatenate([b.arrays.ts for b in series]))
    in_position = np.zeros(times.size, dtype=np.bool_)
    for bars, result in zip(series, results, strict=True):
        held = np.zeros(times.size, dtype=np.bool_)
        held[np.searchsorted(times, bars.arrays.ts)] = result.in_position
        in_position |= held
    trades = sorted((t for r in results for t in r.trades), key=lambda t: (t.entry_time, t.pair))
    return BacktestResult(mode="engine", pair=" + ".join(b.pair for b in series), timeframe_s=tf, start_equity=start,
                          end_equity=end, trades=trades, equity_ts=ts, equity=eq, in_position=in_position,
                          bars=int(times.size))


def _notes(result: BacktestResult, engine: Engine) -> None:
    refused = engine.counters.get("entries_rejected", 0)
    if refused:
        result.notes.append(f"entries refused by the risk checks: {refused}")
    for counter, what in (("scan_timeouts", "strategy scans over the time limit, skipped"),
                          ("scan_errors", "strategy scans that failed"), ("feed_errors", "candles that failed")):
        if engine.counters.get(counter):
            result.exact = False
            result.notes.append(f"{what}: {engine.counters[counter]}")


def _bar_of(ts: datetime, bars: Bars) -> int:
    """The candle during whose processing a fill was stamped (fills carry the clock: its close)."""
    opened = int(ts.timestamp()) - bars.timeframe_s
    i = int(np.searchsorted(bars.arrays.ts, opened))
    if i >= len(bars) or int(bars.arrays.ts[i]) != opened:
        raise KeyError(f"no {bars.pair} candle opens at {opened}")
    return i


def _trade(pos: PositionRow, bars: Bars, spec: RunSpec) -> Trade:
    tf = bars.timeframe_s
    last_close = bars.price(len(bars) - 1, "close")
    at_close = timedelta(seconds=tf if spec.fill_on == "last_close" else 0)
    entry_bar = _bar_of(pos.opened_at, bars)
    cost = pos.entry_cost + pos.entry_fees
    if pos.status == "closed" and pos.closed_at is not None:
        exit_bar: int | None = _bar_of(pos.closed_at, bars)
        exit_price = accounting.exit_price(pos) or ZERO
        pnl = pos.realized_pnl
        reason = pos.exit_reason
    else:
        exit_bar, exit_price, reason = None, last_close, "open"
        basis = cost / pos.entry_qty if pos.entry_qty else ZERO
        pnl = pos.realized_pnl + pos.qty * (last_close - basis)
    return Trade(pair=pos.pair, entry_bar=entry_bar, exit_bar=exit_bar, entry_time=bars.time(entry_bar) + at_close,
                 exit_time=bars.time(exit_bar) + at_close if exit_bar is not None else None, qty=pos.entry_qty,
                 entry_price=accounting.entry_price(pos), exit_price=exit_price, fees=pos.entry_fees + pos.exit_fees,
                 pnl=pnl.quantize(accounting.Q), pnl_pct=(pnl / cost * 100).quantize(CENTS) if cost else ZERO,
                 exit_reason=reason)
