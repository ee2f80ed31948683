"""Builds one leadership term's trading core: venue, feed, market data, strategies, engine.

A new :class:`TradingCore` is built each time this instance becomes leader (a feed is a one-pass
iterator and an engine's tasks belong to one term) and stopped when leadership ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select

from core.app.errors import StartupError
from core.settings.config import Settings
from core.trading.assembly import build_engine
from core.trading.engine import Engine
from core.trading.events import EventBus
from exchanges.base import Exchange
from exchanges.clock import SimClock, SystemClock
from persistence.db import Database
from persistence.models import RuntimeValue

if TYPE_CHECKING:
    from core.app.paper_live import LivePaper
    from core.ops.instruments import Instruments

log = logging.getLogger("tradectl.core")


async def _replay_cursors(db: Database, pairs: tuple[str, ...]) -> dict[str, datetime]:
    keys = [f"last_candle:{p}" for p in pairs]
    async with db.session() as s:
        rows = (await s.exec(select(RuntimeValue).where(col(RuntimeValue.key).in_(keys)))).all()
    return {r.key.split(":", 1)[1]: datetime.fromisoformat(r.value) for r in rows}


class TradingCore:
    name = "trading-core"

    def __init__(self, settings: Settings, db: Database, events: EventBus, *, instance_id: str,
                 leader: Callable[[], str | None], on_failure: Callable[[BaseException], None],
                 on_feed_end: Callable[[], None] | None = None, instruments: Instruments | None = None) -> None:
        self.settings = settings
        self._instruments = instruments  # the metrics, when enabled: a live venue's requests are timed
        self.db = db
        self.events = events
        self.instance_id = instance_id
        self._leader = leader
        self._on_failure = on_failure
        self._on_feed_end = on_feed_end
        self.engine: Engine | None = None
        self.exchange: Exchange | None = None
        self._live_paper: LivePaper | None = None

    # Read when needed by what outlives a term (the chat service, the scheduler's jobs, the heartbeat):
    # each term builds a new engine and venue, so nobody keeps them.

    def current_engine(self) -> Engine | None:
        return self.engine

    def current_exchange(self) -> Exchange | None:
        return self.exchange

    def now(self) -> datetime:
        """The engine's clock while a term runs (replay time in paper mode), else the wall clock."""
        return self.engine.clock.now() if self.engine is not None else datetime.now(UTC)

    def state_name(self) -> str:
        """``running``, ``paused`` or ``killed`` while trading, ``standby`` between terms (the heartbeat's)."""
        return str(self.engine.state.state) if self.engine is not None else "standby"

    async def start(self) -> None:
        if self.engine is not None:
            return
        from core.trading.pairs import with_saved_pairs

        self.settings = with_saved_pairs(self.settings)  # /pairs may have changed them since the process started
        s = self.settings
        if s.trading.mode == "live":
            await self._start_live()
            return
        if s.trading.feed != "replay":
            await self._start_paper_live()
            return
        from exchanges.paper import MarketRules, PaperExchange
        from exchanges.replay import ReplayFeed, ReplaySource, load_bundled, load_csv

        tf = s.trading.timeframe_s
        series = {}
        for pair in s.trading.pairs:
            loaded = load_csv(s.replay.csv, pair, timeframe_s=tf) if s.replay.csv else load_bundled(pair)
            if loaded.timeframe_s != tf:
                raise StartupError(f"replay data is {loaded.timeframe_s}s candles but trading.timeframe is "
                                     f"{s.trading.timeframe}")
            series[pair] = loaded.candles
        cursors = await _replay_cursors(self.db, s.trading.pairs)
        first = min((c[0].ts for c in series.values() if c), default=None)
        start = max(cursors.values()) if cursors else first
        clock = SimClock(start) if start is not None else SimClock()
        feed = ReplayFeed(series, clock=clock, speed=s.replay.speed, resume_after=cursors or None,
                          source=ReplaySource(s.replay.csv, tf))  # /pairs add loads a pair's candles from it
        p = s.paper
        rules = MarketRules(min_qty=p.min_qty, qty_step=p.qty_step, price_tick=p.price_tick,
                            min_notional=p.min_notional, maker_fee=p.maker_fee, taker_fee=p.taker_fee)
        exchange = PaperExchange(self.db, {pair: rules for pair in s.trading.pairs},
                                 starting_balances=p.starting_balances, slippage_bps=p.slippage_bps,
                                 impact_bps=p.impact_bps, volume_share=p.volume_share, latency_ms=p.latency_ms,
                                 clock=clock, timeframe_s=tf)
        await exchange.start()
        self.exchange = exchange
        self.engine = build_engine(s, self.db, exchange, feed, clock, self.events,
                                   market_hooks=(exchange.on_market_event,),
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
        from core.app.live import build_live_exchange, judge

        s = self.settings
        exchange = build_live_exchange(s, db=self.db, instruments=self._instruments)  # Kraken nonces: in the db
        await exchange.start()
        try:
            from core.app.venues import allow_withdraw_keys

            gate = judge(await exchange.preflight(list(s.trading.pairs)), allow_withdraw=allow_withdraw_keys(s))
            for line in gate.lines:
                log.info("preflight %s", line)
            if not gate.passed:
                failed = [line for line in gate.lines if line.startswith("FAIL")]
                raise StartupError("live preflight failed: " + "; ".join(failed))
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

    async def _start_paper_live(self) -> None:
        """Paper on a live venue's public feed, on the wall clock (see :mod:`core.app.paper_live`)."""
        from core.app.paper_live import open_paper_live

        live = await open_paper_live(self.settings, self.db)
        try:
            self.exchange = live.exchange
            self.engine = build_engine(live.settings, self.db, live.exchange, live.feed, live.clock, self.events,
                                       market_hooks=(live.exchange.on_market_event,), instance_id=self.instance_id,
                                       leader=self._leader, on_failure=self._on_failure)
            live.warm(self.engine.md)
            await self.engine.start()
        except BaseException:
            self.engine = None
            self.exchange = None
            await live.stop()
            raise
        self._live_paper = live

    async def stop(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            await engine.stop()
        live, self._live_paper = self._live_paper, None
        if live is not None:
            self.exchange = None
            await live.stop()
        if self.exchange is not None:
            await self.exchange.stop()
            self.exchange = None
