"""Engine mode: the backtest *is* the engine, fed history on a simulated clock.

Built exactly as the service builds it (:func:`core.trading_core.build_engine`): the configured
strategies, risk manager, executor and accounting, a :class:`~exchanges.paper.PaperExchange` (fill
model, fees, slippage, volume-share partial fills) and a :class:`~exchanges.replay.ReplayFeed` at
full speed advancing a :class:`~exchanges.clock.SimClock`. Each run gets a fresh SQLite database in
a temporary directory, deleted afterwards; results are read back from that database through the
engine's own accounting, so what the backtest reports is what the service would have recorded.

Differences from the service, all deliberate:

- the run drives :meth:`Engine.on_candle` itself, one candle at a time, instead of starting the
  engine's feed and protection tasks: a wall-clock protection loop would make runs depend on how
  fast the machine is, and an exception here should end the run, not be counted and skipped.
  Stops are still checked on every candle's low and high inside ``on_candle``;
- with sizing ``fixed``/``fraction`` the risk manager is :class:`~core.backtest.sizing.PlainSizing`;
- when a breaker pauses entries, the run can resume them at the next day's first candle
  (``resume_after_pause = next_day``) through the same ``Resume`` intent an operator would send.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import event as sa_event
from sqlmodel import col, select

from core import accounting
from core.backtest.data import Bars
from core.backtest.model import BacktestResult, Pause, RunSpec, Trade
from core.backtest.progress import Progress
from core.backtest.sizing import PlainSizing
from core.config import Settings
from core.engine import Engine
from core.events import EventBus
from core.intents import Resume
from core.settings_models import TIMEFRAMES
from core.state import PAUSED
from core.trading_core import build_engine
from exchanges.base import Candle, MarketEvent
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from exchanges.replay import ReplayFeed
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import PositionRow

ZERO = Decimal(0)
CENTS = Decimal("0.01")


def run_settings(settings: Settings, bars: Bars) -> Settings:
    """The settings for one pair on the paper venue at the candles' timeframe.

    The scan timeout is raised to its maximum: it is wall-clock time, and a backtest on a busy
    machine must not skip a scan that the same backtest on an idle one would have run.
    """
    names = {v: k for k, v in TIMEFRAMES.items()}
    if bars.timeframe_s not in names:
        raise ValueError(f"no timeframe setting matches {bars.timeframe_s}s candles ({', '.join(TIMEFRAMES)})")
    trading = settings.trading.model_copy(update={"pairs": (bars.pair,), "timeframe": names[bars.timeframe_s],
                                                  "mode": "paper", "venue": "paper", "scan_timeout_s": 120.0})
    return settings.model_copy(update={"trading": trading})


def market_rules(settings: Settings) -> MarketRules:
    p = settings.paper
    return MarketRules(min_qty=p.min_qty, qty_step=p.qty_step, price_tick=p.price_tick, min_notional=p.min_notional,
                       maker_fee=p.maker_fee, taker_fee=p.taker_fee)


def start_equity(settings: Settings, bars: Bars) -> Decimal:
    """Starting balances valued in the quote currency at the first candle's close."""
    base, quote = bars.pair.split("/")
    total = ZERO
    for currency, amount in settings.paper.starting_balances.items():
        if currency == quote:
            total += amount
        elif currency == base:
            total += amount * bars.price(0, "close")
    return total


async def _nothing() -> AsyncIterator[MarketEvent]:
    return
    yield  # pragma: no cover - makes this an async generator


def _unsafe_fast_sqlite(db: Database) -> None:
    """No fsync for the throw-away database: a crash loses nothing worth keeping."""
    @sa_event.listens_for(db.engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()


async def run_engine(settings: Settings, bars: Bars, spec: RunSpec = RunSpec(), *,
                     progress: Progress | None = None, workdir: Path | None = None) -> BacktestResult:
    """Replay ``bars`` through a freshly built engine and return what it traded."""
    settings = run_settings(settings, bars)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tradectl-backtest-", dir=workdir) as tmp:
        db = Database(f"sqlite:///{tmp}/backtest.db")
        await db.start()
        _unsafe_fast_sqlite(db)
        try:
            await upgrade(db)
            return await _run(settings, db, bars, spec, progress, started)
        finally:
            await db.stop()


async def _run(settings: Settings, db: Database, bars: Bars, spec: RunSpec, progress: Progress | None,
               started: float) -> BacktestResult:
    candles = bars.candle_objects()
    clock = SimClock(candles[0].ts)
    p = settings.paper
    exchange = PaperExchange(db, {bars.pair: market_rules(settings)}, starting_balances=p.starting_balances,
                             slippage_bps=p.slippage_bps, impact_bps=p.impact_bps, volume_share=p.volume_share,
                             latency_ms=0, clock=clock, fill_on=spec.fill_on, timeframe_s=bars.timeframe_s)
    await exchange.start()
    try:
        engine, pauses = await _drive(settings, db, bars, spec, exchange, clock, candles, progress)
        result = await _collect(engine, db, bars, spec, settings)
    finally:
        await exchange.stop()
    result.pauses = pauses
    result.elapsed_s = time.perf_counter() - started
    dropped = engine.md.rejected
    if dropped:
        result.notes.append("candles refused by market data: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    return result


async def _drive(settings: Settings, db: Database, bars: Bars, spec: RunSpec, exchange: PaperExchange,
                 clock: SimClock, candles: tuple[Candle, ...], progress: Progress | None) -> tuple[Engine, list[Pause]]:
    """Build the engine and hand it every candle, resuming after breaker pauses as configured."""
    engine = build_engine(settings, db, exchange, _nothing(), clock, EventBus(),
                          market_hooks=(exchange.on_market_event,))
    if spec.sizing != "risk":
        # build_engine has no parameter for the risk manager yet; the engine reads it from here only.
        engine.risk = PlainSizing(settings.risk, sizing=spec.sizing, qty=spec.qty, fraction=spec.fraction)
    await engine.start()  # loads state and markets, recovers (nothing, in a new database)
    await engine.stop()   # ... and the run drives on_candle itself (see the module docstring)
    pauses: list[Pause] = []
    tz = ZoneInfo(settings.service.timezone)
    feed = ReplayFeed({bars.pair: candles}, clock=clock, speed=0)
    done = 0
    async for candle in feed:
        if engine.state.state == PAUSED and pauses and pauses[-1].resumed_at is None:
            await _maybe_resume(engine, spec, pauses, candle.ts, tz)
        was = engine.state.state
        await engine.on_candle(candle)
        if engine.state.state == PAUSED and was != PAUSED:
            pauses.append(Pause(at=clock.now(), reason=engine.state.reason, resumed_at=None))
        done += 1
        if progress is not None:
            progress.update(done)
    if progress is not None:
        progress.close()
    return engine, pauses


async def _maybe_resume(engine: Engine, spec: RunSpec, pauses: list[Pause], candle_ts: datetime, tz: ZoneInfo) -> None:
    last = pauses[-1]
    if spec.resume_after_pause != "next_day" or candle_ts.astimezone(tz).date() <= last.at.astimezone(tz).date():
        return
    outcome = await engine.submit(Resume(requested_by="backtest"))
    if outcome.ok:
        pauses[-1] = Pause(at=last.at, reason=last.reason, resumed_at=candle_ts)


async def _collect(engine: Engine, db: Database, bars: Bars, spec: RunSpec, settings: Settings) -> BacktestResult:
    tf = bars.timeframe_s
    index = {int(t): i for i, t in enumerate(bars.arrays.ts)}
    async with db.session() as s:
        rows = (await s.exec(select(PositionRow).where(col(PositionRow.status).in_(("open", "closed")))
                             .order_by(col(PositionRow.id)))).all()
        points = await accounting.equity_points(s)
    last_close = bars.price(len(bars) - 1, "close")
    trades = [_trade(r, bars, index, tf, spec, last_close) for r in rows]
    equity_ts = np.fromiter((int(t.timestamp()) for t, _ in points), dtype=np.int64, count=len(points))
    equity = np.fromiter((float(v) for _, v in points), dtype=np.float64, count=len(points))
    in_position = np.zeros(len(bars), dtype=np.bool_)
    for t in trades:
        in_position[t.entry_bar:(t.exit_bar if t.exit_bar is not None else len(bars))] = True
    end = points[-1][1] if points else start_equity(settings, bars)
    result = BacktestResult(mode="engine", pair=bars.pair, timeframe_s=tf, start_equity=start_equity(settings, bars),
                            end_equity=end, trades=trades, equity_ts=equity_ts, equity=equity,
                            in_position=in_position, bars=len(bars))
    refused = engine.counters.get("entries_rejected", 0)
    if refused:
        result.notes.append(f"entries refused by the risk checks: {refused}")
    for counter, what in (("scan_timeouts", "strategy scans over the time limit, skipped"),
                          ("scan_errors", "strategy scans that failed"), ("feed_errors", "candles that failed")):
        if engine.counters.get(counter):
            result.exact = False
            result.notes.append(f"{what}: {engine.counters[counter]}")
    return result


def _bar_of(ts: datetime, index: dict[int, int], tf: int) -> int:
    """The candle during whose processing a fill was stamped (fills carry the clock: its close)."""
    return index[int(ts.timestamp()) - tf]


def _trade(pos: PositionRow, bars: Bars, index: dict[int, int], tf: int, spec: RunSpec, last_close: Decimal) -> Trade:
    at_close = timedelta(seconds=tf if spec.fill_on == "last_close" else 0)
    entry_bar = _bar_of(pos.opened_at, index, tf)
    cost = pos.entry_cost + pos.entry_fees
    if pos.status == "closed" and pos.closed_at is not None:
        exit_bar: int | None = _bar_of(pos.closed_at, index, tf)
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
