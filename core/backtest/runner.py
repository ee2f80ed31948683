"""Engine mode: the backtest *is* the engine, fed history on a simulated clock.

Built exactly as the service builds it (:func:`core.trading.assembly.build_engine`): the configured
strategies, risk manager, executor and accounting, a :class:`~exchanges.paper.PaperExchange` (fill
model, fees, slippage, volume-share partial fills) and a :class:`~exchanges.replay.ReplayFeed` at
full speed advancing a :class:`~exchanges.clock.SimClock`. Each run gets a fresh SQLite database in
a temporary directory, deleted afterwards; results are read back from that database through the
engine's own accounting, so what the backtest reports is what the service would have recorded. The
equity curve is the engine's own marks, one per candle, kept in memory
(:meth:`~core.trading.books.Books.keep_marks`) rather than written as snapshots and read back. The
paper venue keeps its own state in memory (:class:`~exchanges.paper.store.MemoryPaperStore`): it
lives as long as the run.

Differences from the service, all deliberate:

- the run drives :meth:`Engine.on_candle` itself, one candle at a time, instead of starting the
  engine's feed and protection tasks: a wall-clock protection loop would make runs depend on how
  fast the machine is, and an exception here should end the run, not be counted and skipped.
  Stops are still checked on every candle's low and high inside ``on_candle``;
- with sizing ``fixed``/``fraction`` the risk manager is :class:`~core.backtest.sizing.PlainSizing`;
- when a breaker pauses entries, the run can resume them at the next day's first candle
  (``resume_after_pause = next_day``) through the same ``Resume`` intent an operator would send;
- a warm-up (``RunSpec.warmup``, :mod:`core.backtest.warmup`) is fed with entries paused by the
  ``PauseEntries`` intent and resumed at the first candle after it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event as sa_event

from core.backtest import warmup
from core.backtest.data import Bars
from core.backtest.markets import RULE_FIELDS, PairRules, quote_of, resolve
from core.backtest.model import BacktestResult, Pause, RunSpec
from core.backtest.portfolio import EngineRun, check_series, collect, start_equity
from core.backtest.prescan import prescan
from core.backtest.progress import Progress
from core.backtest.sizing import PlainSizing
from core.settings.config import Settings
from core.settings.settings_models import TIMEFRAMES
from core.trading.assembly import build_engine
from core.trading.engine import Engine
from core.trading.events import EventBus
from core.trading.intents import PauseEntries, Resume
from core.trading.state import PAUSED
from exchanges.base import Candle, MarketEvent
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from exchanges.paper.store import MemoryPaperStore
from exchanges.replay import close_time
from persistence.db import Database
from persistence.migrate import upgrade
from strategies import load_strategies

WHOLE_RUN = RunSpec()  # the default run: RunSpec's own defaults (shared; it is frozen)
__all__ = ["WHOLE_RUN", "market_rules", "pair_rules", "portfolio_settings", "run_engine", "run_engines",
           "run_settings", "start_equity"]


def run_settings(settings: Settings, bars: Bars) -> Settings:
    """The settings for one pair on the paper venue at the candles' timeframe.

    Equity and PnL are counted in the pair's quote currency (``trading.quote`` is set to it), and the
    paper venue's tick, step and minimums are the pair's (:func:`pair_rules`). The scan timeout is
    raised to its maximum: it is wall-clock time, and a backtest on a busy machine must not skip a
    scan that the same backtest on an idle one would have run.
    """
    names = {v: k for k, v in TIMEFRAMES.items()}
    if bars.timeframe_s not in names:
        raise ValueError(f"no timeframe setting matches {bars.timeframe_s}s candles ({', '.join(TIMEFRAMES)})")
    rules = pair_rules(settings, bars).rules
    paper = settings.paper.model_copy(update={"price_tick": rules.price_tick, "qty_step": rules.qty_step,
                                              "min_qty": rules.min_qty, "min_notional": rules.min_notional})
    trading = settings.trading.model_copy(update={"pairs": (bars.pair,), "timeframe": names[bars.timeframe_s],
                                                  "mode": "paper", "venue": "paper", "scan_timeout_s": 120.0,
                                                  "quote": quote_of(bars.pair)})
    return settings.model_copy(update={"trading": trading, "paper": paper})


def pair_rules(settings: Settings, bars: Bars) -> PairRules:
    """The tick, step and minimums a backtest of ``bars.pair`` uses (see :mod:`core.backtest.markets`)."""
    p = settings.paper
    explicit = {name: getattr(p, name) for name in RULE_FIELDS if name in p.model_fields_set}
    defaults = {name: getattr(p, name) for name in RULE_FIELDS}
    a = bars.arrays
    return resolve(bars.pair, settings.trading.venue, explicit, defaults, (p.maker_fee, p.taker_fee),
                   (a.open, a.high, a.low, a.close))


def market_rules(settings: Settings) -> MarketRules:
    p = settings.paper
    return MarketRules(min_qty=p.min_qty, qty_step=p.qty_step, price_tick=p.price_tick, min_notional=p.min_notional,
                       maker_fee=p.maker_fee, taker_fee=p.taker_fee)


def portfolio_settings(settings: Settings, series: Sequence[Bars]) -> tuple[Settings, dict[str, MarketRules]]:
    """:func:`run_settings` for every pair of a portfolio, and each pair's own market rules."""
    check_series(series)
    rules = {bars.pair: pair_rules(settings, bars).rules for bars in series}
    one = run_settings(settings, series[0])
    if len(series) == 1:
        return one, {series[0].pair: market_rules(one)}
    trading = one.trading.model_copy(update={"pairs": tuple(b.pair for b in series)})
    return one.model_copy(update={"trading": trading}), rules


async def _nothing() -> AsyncIterator[MarketEvent]:
    events: tuple[MarketEvent, ...] = ()  # a feed that ends at once: the backtest sends candles itself
    for event in events:
        yield event


def _unsafe_fast_sqlite(db: Database) -> None:
    """No fsync for the throw-away database: a crash loses nothing worth keeping."""
    @sa_event.listens_for(db.engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()


async def run_engine(settings: Settings, bars: Bars, spec: RunSpec = WHOLE_RUN, *,
                     progress: Progress | None = None, workdir: Path | None = None) -> BacktestResult:
    """Replay ``bars`` through a freshly built engine and return what it traded."""
    run = await run_engines(settings, (bars,), spec, progress=progress, workdir=workdir)
    return run.results[0]


async def run_engines(settings: Settings, series: Sequence[Bars], spec: RunSpec = WHOLE_RUN, *,
                      progress: Progress | None = None, workdir: Path | None = None) -> EngineRun:
    """Replay several pairs' candles through one engine: the live engine's portfolio, sharing cash,
    exposure limits and the open-positions limit (see :mod:`core.backtest.portfolio`)."""
    warmup.check(spec, series)
    settings, rules = portfolio_settings(settings, series)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tradectl-backtest-", dir=workdir) as tmp:
        path = Path(tmp) / "backtest.db"
        path.write_bytes(await _migrated_schema(Path(tmp)))
        db = Database(f"sqlite:///{path}", inline=True)
        await db.start()
        _unsafe_fast_sqlite(db)
        try:
            return await _run(settings, rules, db, tuple(series), spec, progress, started)
        finally:
            await db.stop()


_SCHEMA: list[bytes] = []  # the migrated empty database file, made once per process


async def _migrated_schema(tmp: Path) -> bytes:
    """An empty SQLite database file at the schema's head revision. The migrations run once per process
    and their result is copied for every later run: they cost more than a short run's trading (a tuning
    study runs hundreds)."""
    if not _SCHEMA:
        db = Database(f"sqlite:///{tmp}/schema.db")
        await db.start()
        try:
            await upgrade(db)
        finally:
            await db.stop()
        _SCHEMA.append((tmp / "schema.db").read_bytes())
        (tmp / "schema.db").unlink()
    return _SCHEMA[0]


async def _run(settings: Settings, rules: dict[str, MarketRules], db: Database, series: tuple[Bars, ...],
               spec: RunSpec, progress: Progress | None, started: float) -> EngineRun:
    first = min(s.candle_objects()[0].ts for s in series)
    clock = SimClock(first)
    p = settings.paper
    exchange = PaperExchange(db, rules, starting_balances=p.starting_balances,
                             slippage_bps=p.slippage_bps, impact_bps=p.impact_bps, volume_share=p.volume_share,
                             latency_ms=0, clock=clock, fill_on=spec.fill_on, timeframe_s=series[0].timeframe_s,
                             store=MemoryPaperStore())
    await exchange.start()
    try:
        engine, pauses = await _drive(settings, db, series, spec, exchange, clock, progress)
        run = await collect(engine, db, series, spec, settings)
    finally:
        await exchange.stop()
    elapsed = time.perf_counter() - started
    dropped = engine.md.rejected
    for result in (*run.results, run.portfolio):
        result.pauses = pauses
        result.elapsed_s = elapsed
        if dropped:
            result.notes.append("candles refused by market data: "
                                + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    if spec.warmup:
        warm = warmup.trading_part(run.portfolio, series[0], settings, spec.warmup)
        return EngineRun(results=(warm,), portfolio=warm)
    return run


async def _drive(settings: Settings, db: Database, series: tuple[Bars, ...], spec: RunSpec, exchange: PaperExchange,
                 clock: SimClock, progress: Progress | None) -> tuple[Engine, list[Pause]]:
    """Build the engine and hand it every candle, resuming after breaker pauses as configured."""
    plain = (PlainSizing(settings.risk, sizing=spec.sizing, qty=spec.qty, fraction=spec.fraction)
             if spec.sizing != "risk" else None)
    quick = prescan(load_strategies(settings.strategies), {b.pair: b for b in series}) if spec.prescan else None
    engine = build_engine(settings, db, exchange, _nothing(), clock, EventBus(),
                          market_hooks=(exchange.on_market_event,), risk=plain, prescan=quick,
                          inline_scan=True)
    await engine.start()  # loads state and markets, recovers (nothing, in a new database)
    await engine.stop()   # ... and the run drives on_candle itself (see the module docstring)
    engine.books.keep_marks()
    pauses: list[Pause] = []
    tz = ZoneInfo(settings.service.timezone)
    done = 0
    on_candle = engine.on_candle
    if spec.warmup:
        await _submit(engine, PauseEntries(requested_by="backtest", reason="warm-up: history only"))
    for candle in merged(series):
        closed = close_time(candle)
        if closed > clock.now():
            clock.advance_to(closed)
        if spec.warmup and done == spec.warmup:  # one pair (warmup.check): the first candle after the warm-up
            await _submit(engine, Resume(requested_by="backtest"))
        if pauses and pauses[-1].resumed_at is None and engine.state.state == PAUSED:
            await _maybe_resume(engine, spec, pauses, candle.ts, tz)
        was = engine.state.state
        await on_candle(candle)
        if engine.state.state == PAUSED and was != PAUSED:
            pauses.append(Pause(at=clock.now(), reason=engine.state.reason, resumed_at=None))
        done += 1
        if progress is not None and not done % 256:
            progress.update(done)
    if progress is not None:
        progress.update(done)
        progress.close()
    return engine, pauses


def merged(series: Sequence[Bars]) -> list[Candle]:
    """Every pair's candles in the order :class:`~exchanges.replay.ReplayFeed` hands them to the
    engine (close time, then pair). The run walks this list itself: the feed's pause between candles
    (a turn of the event loop, for a service's other tasks) is most of an idle candle's cost here."""
    out = [c for bars in series for c in bars.candle_objects()]
    out.sort(key=lambda c: (close_time(c), c.pair, c.ts))
    return out


async def _submit(engine: Engine, intent: PauseEntries | Resume) -> None:
    outcome = await engine.submit(intent)
    if not outcome.ok:
        raise RuntimeError(f"the engine refused {type(intent).__name__}: {outcome.message}")


async def _maybe_resume(engine: Engine, spec: RunSpec, pauses: list[Pause], candle_ts: datetime, tz: ZoneInfo) -> None:
    last = pauses[-1]
    if spec.resume_after_pause != "next_day" or candle_ts.astimezone(tz).date() <= last.at.astimezone(tz).date():
        return
    outcome = await engine.submit(Resume(requested_by="backtest"))
    if outcome.ok:
        pauses[-1] = Pause(at=last.at, reason=last.reason, resumed_at=candle_ts)


