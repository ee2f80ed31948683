"""Builds one leadership term's trading core: venue, feed, market data, strategies, engine.

A new :class:`TradingCore` is built each time this instance becomes leader (a feed is a one-pass
iterator and an engine's tasks belong to one term) and stopped when leadership ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import col, select

from core.config import Settings
from core.engine import Engine
from core.events import EventBus
from core.executor import Executor
from core.market_data import MarketData
from core.risk import RiskManager
from core.settings_models import TIMEFRAMES
from core.state import StateStore
from exchanges.base import Exchange
from exchanges.clock import SimClock, SystemClock
from persistence.db import Database
from persistence.models import RuntimeValue

log = logging.getLogger("tradectl.core")


class StartupRefused(Exception):
    """The trading core refuses to start; the message says what to change."""


async def _replay_cursors(db: Database, pairs: tuple[str, ...]) -> dict[str, datetime]:
    keys = [f"last_candle:{p}" for p in pairs]
    async with db.session() as s:
        rows = (await s.exec(select(RuntimeValue).where(col(RuntimeValue.key).in_(keys)))).all()
    return {r.key.split(":", 1)[1]: datetime.fromisoformat(r.value) for r in rows}


class TradingCore:
    name = "trading-core"

    def __init__(self, settings: Settings, db: Database, events: EventBus, *, instance_id: str,
                 leader: Callable[[], str | None], on_failure: Callable[[BaseException], None],
                 on_feed_end: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.instance_id = instance_id
        self._leader = leader
        self._on_failure = on_failure
        self._on_feed_end = on_feed_end
        self.engine: Engine | None = None
        self.exchange: Exchange | None = None

    async def start(self) -> None:
        if self.engine is not None:
            return
        s = self.settings
        if s.trading.mode == "live":
            await self._start_live()
            return
        from exchanges.paper import MarketRules, PaperExchange
        from exchanges.replay import ReplayFeed, load_bundled, load_csv

        tf = s.trading.timeframe_s
        series = {}
        for pair in s.trading.pairs:
            loaded = load_csv(s.replay.csv, pair, timeframe_s=tf) if s.replay.csv else load_bundled(pair)
            if loaded.timeframe_s != tf:
                raise StartupRefused(f"replay data is {loaded.timeframe_s}s candles but trading.timeframe is {s.trading.timeframe}")
            series[pair] = loaded.candles
        cursors = await _replay_cursors(self.db, s.trading.pairs)
        first = min((c[0].ts for c in series.values() if c), default=None)
        start = max(cursors.values()) if cursors else first
        clock = SimClock(start) if start is not None else SimClock()
        feed = ReplayFeed(series, clock=clock, speed=s.replay.speed, resume_after=cursors or None)
        p = s.paper
        rules = MarketRules(min_qty=p.min_qty, qty_step=p.qty_step, price_tick=p.price_tick,
                            min_notional=p.min_notional, maker_fee=p.maker_fee, taker_fee=p.taker_fee)
        exchange = PaperExchange(self.db, {pair: rules for pair in s.trading.pairs},
                                 starting_balances=p.starting_balances, slippage_bps=p.slippage_bps,
                                 impact_bps=p.impact_bps, volume_share=p.volume_share, latency_ms=p.latency_ms,
                                 clock=clock, timeframe_s=tf)
        await exchange.start()
        self.exchange = exchange
        self.engine = build_engine(s, self.db, exchange, feed, clock, self.events, market_hooks=(exchange.on_market_event,),
                                   instance_id=self.instance_id, leader=self._leader, on_feed_end=self._on_feed_end,
                                   on_failure=self._on_failure)
        try:
            await self.engine.start()
        except BaseException:
            self.engine = None
            await exchange.stop()
            raise

    async def _start_live(self) -> None:
        """Live: the venue's own WebSocket feed on the wall clock, after the preflight gate."""
        from core.live import build_live_exchange, judge

        s = self.settings
        exchange = build_live_exchange(s, db=self.db)  # Kraken nonces persist in the database
        await exchange.start()
        try:
            gate = judge(await exchange.preflight(list(s.trading.pairs)),  # type: ignore[attr-defined]
                         allow_withdraw=(s.kraken if s.trading.venue == "kraken" else s.coinbase).allow_withdraw_keys)
            for line in gate.lines:
                log.info("preflight %s", line)
            if not gate.passed:
                raise StartupRefused("live preflight failed: " + "; ".join(l for l in gate.lines if l.startswith("FAIL")))
            clock = SystemClock()
            feed = exchange.market_events(list(s.trading.pairs), s.trading.timeframe_s)
            self.exchange = exchange
            self.engine = build_engine(s, self.db, exchange, feed, clock, self.events, instance_id=self.instance_id,
                                       leader=self._leader, on_failure=self._on_failure)
            await self.engine.start()
        except BaseException:
            self.engine = None
            self.exchange = None
            await exchange.stop()
            raise

    async def stop(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            await engine.stop()
        if self.exchange is not None:
            await self.exchange.stop()
            self.exchange = None


def build_engine(settings: Settings, db: Database, exchange: Exchange, feed: object, clock: SimClock | SystemClock,
                 events: EventBus, *, market_hooks: tuple = (), instance_id: str = "",
                 leader: Callable[[], str | None] = lambda: None, on_feed_end: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None) -> Engine:
    """The engine with its collaborators, built the same way for the service, replay and backtests."""
    from strategies import load_strategies

    s = settings
    htf = TIMEFRAMES[s.strategies.higher_timeframe] if s.strategies.higher_timeframe else None
    md = MarketData(s.trading.timeframe_s, (htf,) if htf else (), capacity=max(s.trading.history_bars, 250),
                    outlier_max_move=s.trading.outlier_max_move if s.trading.outlier_max_move > 0 else None)
    strategy_set = load_strategies(s.strategies)
    risk = RiskManager(s.risk)
    executor = Executor(db, exchange, events, clock)
    engine = Engine(db=db, exchange=exchange, feed=feed, market_data=md, evaluate=strategy_set.evaluate,  # type: ignore[arg-type]
                    risk=risk, executor=executor, state=StateStore(db, s.service.group), clock=clock, events=events,
                    trading=s.trading, timezone=s.service.timezone, mode=s.trading.mode, market_hooks=market_hooks,
                    higher_timeframe_s=htf, instance_id=instance_id, leader=leader, on_feed_end=on_feed_end,
                    stale_command_s=s.chat.stale_command_s)
    engine.on_failure = on_failure
    engine.strategy_set = strategy_set
    return engine


