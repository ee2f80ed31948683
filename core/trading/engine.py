"""The trading engine: one code path for replay, backtest, paper and live.

It runs on an injected clock, market-data feed and exchange, and builds its parts from them, each
with the collaborators it needs and no reference back to the engine: the trading state and its
transitions (:mod:`core.trading.state`), exits and protection (:mod:`core.trading.exits`), the
valuation (:mod:`core.trading.books`), the kill switch, intents (:mod:`core.trading.control`), the
queries, the outage watch and recovery. The traded pairs are one :class:`~core.trading.traded.TradedPairs`,
given at construction to every part that reads them and changed only by ``/pairs``
(:mod:`core.trading.pairs`). Owned tasks (under a :class:`~core.runtime.lifecycle.Supervisor`; a failure
is logged, published as an alert and reported through ``on_failure``):

- ``engine:feed``: consumes the feed; each closed candle updates market data, lets market hooks
  run (the paper venue matches resting orders there), applies new fills, checks stops against the
  candle's range, runs the strategy scan for that pair, snapshots equity and checks the breakers.
- ``engine:protection``: every ``trading.protection_interval_s`` (about 1 s) pulls fills and checks
  stops, take-profits and trailing stops against the freshest price, independent of the scan.
- ``engine:recovery``: the start-up phase (:mod:`core.trading.recovery`); the other two wait for its first
  part, so :meth:`Engine.start` itself returns at once.
- ``engine:auto-pause``: a breaker's pause started from a synchronous error path (a burst of
  exchange errors), at most one at a time.

A candle counts once it is fully processed: its last step stores the replay cursor. A database
outage stops the feed on the candle in hand, which is retried until it goes through
(:mod:`core.trading.outage`); every step of a candle is idempotent, so a retried or re-fed candle takes
effect once.

Strategies run in a worker thread with a time budget, so a slow scan never blocks the event loop:
commands, the protection loop and :meth:`Engine.kill` keep working while it is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from core.runtime.lifecycle import Supervisor, TaskFailed
from core.settings.settings_models import TradingSettings
from core.trading.books import Books
from core.trading.control import Control
from core.trading.entries import EntryGuard, NoEntry
from core.trading.errorburst import ErrorBurst
from core.trading.events import AutoPaused, EngineError, EventBus
from core.trading.executor import Executor, OrderSpec
from core.trading.exits import Exits
from core.trading.intents import Intent, IntentResult
from core.trading.kill import KillSwitch
from core.trading.manual import ManualOrders
from core.trading.market_data import MarketData
from core.trading.outage import DatabaseWatch, is_database_outage
from core.trading.pairs import PAIR_INTENTS, PairManager
from core.trading.queries import Identity, Liveness, Queries
from core.trading.recovery import Recovery
from core.trading.risk import Portfolio, RiskManager
from core.trading.state import PAUSED, RUNNING, StateStore, TradingState, TradingStates
from core.trading.traded import TradedPairs
from core.trading.values import OrderPurpose, PositionStatus
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
from core.trading.work import Work
from exchanges.base import Candle, Exchange, FeedStatus, Market, MarketEvent, Side, Ticker
from exchanges.clock import Clock
from exchanges.errors import ExchangeError
from persistence.db import Database
from persistence.models import PositionRow
from strategies.base import Candles, Direction, Signal

log = logging.getLogger("tradectl.engine")
Evaluate = Callable[[str, Candles, Candles | None], Signal]
MarketHook = Callable[[MarketEvent], Awaitable[None]]
# A backtest's answer for a candle without running the strategies (see Engine's ``prescan``); None: scan.
Prescan = Callable[[Candle], Signal | None]
ZERO = Decimal(0)
AUTO_PAUSE_TASK = "engine:auto-pause"


class Engine:
    name = "engine"

    def __init__(
        self,
        *,
        db: Database,
        exchange: Exchange,
        feed: AsyncIterator[MarketEvent],
        market_data: MarketData,
        evaluate: Evaluate,
        risk: RiskManager,
        executor: Executor,
        state: StateStore,
        clock: Clock,
        events: EventBus,
        trading: TradingSettings,
        timezone: str,
        mode: str,
        market_hooks: tuple[MarketHook, ...] = (),
        higher_timeframe_s: int | None = None,
        instance_id: str = "",
        leader: Callable[[], str | None] = lambda: None,
        on_feed_end: Callable[[], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        recovery_wait_s: float = 60.0,
        stale_command_s: float = 120.0,
        prescan: Prescan | None = None,
        pairs_overlay: Path | None = None,
        inline_scan: bool = False,
        errors: ErrorBurst | None = None,
    ) -> None:
        """``on_failure`` hears of a task of the engine that failed (the service stops then).

        ``errors`` counts the venue errors for the error-burst breaker; the assembly hands the same one
        to the executor (``on_exchange_error``), so failed order sends and cancels count too.

        ``prescan`` (backtests only) may answer a candle's scan without the strategies: a backtest knows
        the whole series and its vectorized signals, so most candles are a known HOLD that needs neither
        the window nor the worker thread. It returns None where the strategies must run as usual.
        ``inline_scan`` (backtests only) runs the strategies in the loop's own thread, without the time
        budget: nothing else waits on a backtest's loop, and the hand-off to a worker costs more than
        a scan of one strategy."""
        self.db, self.venue, self.md, self.clock, self.events = db, exchange, market_data, clock, events
        self.risk, self.executor, self.state_store = risk, executor, state
        self.trading = trading
        self._prescan = prescan
        self._inline_scan = inline_scan
        self._hooks = market_hooks
        self._htf = higher_timeframe_s
        self.tz = timezone
        self.mode = mode
        self.instance_id = instance_id
        self._on_feed_end = on_feed_end
        self._on_failure = on_failure
        self.failed: BaseException | None = None
        # filled in place by start(): every part below holds this very mapping, and so does the executor
        # (its events carry each pair's step and tick)
        self.markets: dict[str, Market] = executor.markets
        self.counters: Counter[str] = Counter()
        self.errors = errors or ErrorBurst(trading.error_burst, trading.error_window_s)
        self._tasks = Supervisor("engine", on_failure=self._task_failed)
        self._work = Work()
        self._feed_down_since: float | None = None
        self._in_hand: tuple[str, datetime] | None = None  # the candle being processed (see on_candle)
        self._running = False
        self.states = TradingStates(state, events)
        # the one pair set every part below reads; only /pairs changes it (core/trading/pairs.py)
        self.traded = TradedPairs(trading.pairs)
        self.books = Books(db=db, exchange=exchange, market_data=market_data, trading=trading, pairs=self.traded,
                           clock=clock, timezone=timezone, counters=self.counters)
        self.exits = Exits(db=db, executor=executor, states=self.states, market_data=market_data,
                           markets=self.markets, counters=self.counters)
        # every entry, the strategy's and a /buy, is checked and written under one lock (core/trading/entries.py)
        self.entries = EntryGuard(executor=executor, books=self.books, market_data=market_data, states=self.states)
        self.kill_switch = KillSwitch(db=db, executor=executor, states=self.states, events=events, markets=self.markets)
        self.manual = ManualOrders(db=db, executor=executor, states=self.states, exits=self.exits, books=self.books,
                                   risk=risk.s, market_data=market_data, markets=self.markets,
                                   pairs=self.traded, clock=clock, limit_band=trading.manual_limit_band,
                                   entries=self.entries)
        self.control = Control(db=db, states=self.states, kill_switch=self.kill_switch, exits=self.exits,
                               executor=executor, pairs=self.traded, manual=self.manual)
        self.queries = Queries(db=db, exchange=exchange, market_data=market_data, markets=self.markets,
                               trading=trading, pairs=self.traded, clock=clock, timezone=timezone, states=self.states,
                               executor=executor, books=self.books, counters=self.counters,
                               identity=Identity(mode=mode, instance_id=instance_id, leader=leader,
                                                 started=time.monotonic()))
        self.watch = DatabaseWatch(db, self.states, events, self.counters)
        self.recovery = Recovery(db=db, exchange=exchange, executor=executor, states=self.states, events=events,
                                 market_data=market_data, markets=self.markets, pairs=self.traded,
                                 kill_switch=self.kill_switch, control=self.control, books=self.books,
                                 watch=self.watch, work=self._work, wait_s=recovery_wait_s,
                                 stale_command_s=stale_command_s)
        # /pairs add|remove: the pair set changes here, on the engine's side (core/trading/pairs.py)
        self.pair_set = PairManager(db=db, venue=exchange, feed=feed, market_data=market_data, exits=self.exits,
                                    executor=executor, states=self.states, events=events, clock=clock,
                                    markets=self.markets, pairs=self.traded, counters=self.counters,
                                    overlay=pairs_overlay)
        self._feed, self._evaluate = self.pair_set.gate(feed), self.pair_set.guard(evaluate)

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs traded now (``trading.pairs`` at start, then as ``/pairs`` changed them)."""
        return self.traded.active

    @property
    def state(self) -> TradingState:
        """The current trading state (changed only through :attr:`states`)."""
        return self.states.current

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the state and the markets, complete the state of an interrupted ``/kill``, and start
        the tasks. Returns at once: recovery runs in ``engine:recovery`` (await
        ``engine.recovery.prepared`` to know the feed is running)."""
        if self._running:
            return
        await self.states.load()
        markets = await self.venue.markets()
        for pair in self.pairs:
            if pair not in markets:
                raise ValueError(f"pair {pair} is not traded on {self.venue.name}")
        self.markets.clear()
        self.markets.update(markets)
        await self.recovery.begin()
        self._running = True
        self._tasks.spawn("engine:recovery", self.recovery.run())
        self._tasks.spawn("engine:feed", self._feed_loop())
        self._tasks.spawn("engine:protection", self._protection_loop())
        log.info("engine started: state %s, pairs %s", self.state.state, ", ".join(self.pairs))

    def _task_failed(self, failure: TaskFailed) -> None:
        exc = failure.original
        self.events.publish(EngineError.from_exception(failure.task_name, exc))
        self.failed = exc
        if self._on_failure is not None:
            self._on_failure(exc)

    async def stop(self, grace_s: float = 1.0) -> None:
        """Finish the candle or protection pass in progress, then stop the loops. They are cancelled
        only while idle (or after ``grace_s``): cancelling one mid-transaction could leave orders
        half-recorded and, on SQLite, the database locked. The grace is short because a leader that
        lost its lease stops here too: it must not keep trading into the next leader's term."""
        if not self._running:
            return
        self._running = False
        if self._work.busy:
            try:
                await asyncio.wait_for(self._work.quiet(), grace_s)
            except TimeoutError:
                log.warning("engine work still running after %.0fs; cancelling it", grace_s)
        await self._tasks.stop()

    # -- feed ------------------------------------------------------------------------------

    async def _feed_loop(self) -> None:
        await self.recovery.prepared.wait()
        async for event in self._feed:
            while True:  # the same event again while the database is unreachable: none is skipped
                if not self._running:
                    return
                async with self._work.unit():
                    handled = await self._feed_event(event)
                if handled:
                    break
                await asyncio.sleep(self.watch.backoff_s())
        log.info("market data feed ended")
        if self._on_feed_end:
            self._on_feed_end()

    async def _feed_event(self, event: object) -> bool:
        """Handle one feed event; False when it must be retried (the database is unreachable)."""
        try:
            if isinstance(event, Candle):
                await self.on_candle(event)
            elif isinstance(event, Ticker):
                self.md.add_ticker(event)
                for hook in self._hooks:
                    await hook(event)
                await self.recovery.on_price(event.pair)
            elif isinstance(event, FeedStatus):
                self._feed_down_since = None if event.connected else time.monotonic()
        except Exception as exc:
            if is_database_outage(exc):
                self.watch.failed(exc, "feed")
                return False
            if isinstance(exc, ExchangeError):
                self._exchange_error(exc)
                return True
            self.counters["feed_errors"] += 1
            log.exception("error handling %s", type(event).__name__)
            await self.events.announce(self.db, EngineError.from_exception("feed", exc))
            return True
        if self.watch.down:
            try:
                await self.watch.recovered()
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
        return True

    async def on_candle(self, c: Candle) -> None:
        """Process one closed candle. When it failed part-way (the database went away), the same
        candle may be handed in again: it is not ingested twice, and every later step (the venue's
        matching, fills, stops, the scan, the cursor) is idempotent."""
        key = (c.pair, c.ts)
        if self._in_hand != key or not self.md.is_last(c):
            ingest = self.md.add_candle(c)
            if not ingest.accepted:
                self.counters[f"candle_rejected:{ingest.reason}"] += 1
                return
        self._in_hand = key
        for hook in self._hooks:
            await hook(c)
        await self.recovery.on_price(c.pair)
        await self.executor.poll_fills()
        await self.manual.before_protect(c.pair, low=c.low, high=c.high)
        await self.exits.protect(c.pair, low=c.low, high=c.high)
        await self._scan(c.pair, c)
        await self._mark_equity(c)
        self._in_hand = None

    # -- strategy scan ---------------------------------------------------------------------

    async def _scan(self, pair: str, candle: Candle | None = None) -> None:
        if self.md.bars(pair) < 2:
            return
        if self._prescan is not None and candle is not None:
            known = self._prescan(candle)
            if known is not None:
                self.counters["scans"] += 1
                await self._act(pair, known)
                return
        window = self.md.window(pair, self.trading.history_bars)
        htf = self.md.window(pair, 200, self._htf) if self._htf else None
        self.counters["scans"] += 1
        try:
            if self._inline_scan:
                signal = self._evaluate(pair, window, htf)
            else:
                signal = await asyncio.wait_for(asyncio.to_thread(self._evaluate, pair, window, htf),
                                                self.trading.scan_timeout_s)
        except TimeoutError:
            self.counters["scan_timeouts"] += 1
            log.warning("strategy scan for %s exceeded %.1fs", pair, self.trading.scan_timeout_s)
            return
        except Exception as exc:
            self.counters["scan_errors"] += 1
            log.exception("strategy scan for %s failed", pair)
            await self.events.announce(self.db, EngineError.from_exception(f"scan:{pair}", exc))
            return
        await self._act(pair, signal)

    async def _act(self, pair: str, signal: Signal) -> None:
        if signal.direction == Direction.HOLD:
            return
        pos = await self.exits.open_position(pair)
        if signal.direction == Direction.SELL and pos is not None and pos.status == PositionStatus.OPEN:
            await self.exits.exit_position(pos, purpose=OrderPurpose.EXIT, reason=signal.reason, by="strategy")
        elif signal.direction == Direction.BUY and pos is None:
            with self.exits.entering(pair):  # a /pairs remove meanwhile sees a pending position
                await self._enter(pair, signal)

    async def _enter(self, pair: str, signal: Signal) -> None:
        if self.state.state != RUNNING:
            self.counters["entries_skipped_not_running"] += 1
            return
        if not self.traded.takes_entries(pair):  # removed while the strategy ran
            return
        price = self.md.price(pair)
        if price is None:
            return
        closed = self.executor.drain_closed()
        for p in closed:  # the risk manager's cool-down after a losing exit
            self.risk.record_exit(p.pair, p.realized_pnl, p.closed_at or self.clock.now())
        self.books.count_closed(closed)
        stats = await self.books.trade_stats()
        market = self.markets[pair]

        def judge(portfolio: Portfolio) -> tuple[PositionRow, OrderSpec] | str:
            decision = self.risk.check_entry(pair=pair, price=price, suggested_stop=signal.stop, market=market,
                                             portfolio=portfolio, stats=stats, now=self.clock.now())
            if not decision.approved:
                return decision.reason
            pos = PositionRow(pair=pair, status=PositionStatus.PENDING, stop_price=decision.stop,
                              take_profit=signal.take_profit, trailing_pct=self.risk.s.trailing_stop_pct,
                              high_water=price, strategy=signal.strategy, reason=signal.reason[:500],
                              opened_at=self.clock.now())
            return pos, OrderSpec(pair=pair, side=Side.BUY, qty=decision.qty, purpose=OrderPurpose.ENTRY,
                                  position_id=None, reason=signal.reason)

        written = await self.entries.write(pair, judge)  # the risk checks run under the entry lock
        if isinstance(written, NoEntry):
            self.counters["entries_rejected"] += 1
            log.debug("entry %s rejected: %s", pair, written.why)
            return
        _, row = written
        if self.state.state != RUNNING:  # a kill or pause landed while we were writing
            await self.executor.abandon(row, "entries stopped before sending")
            return
        if not self.traded.takes_entries(pair):  # a /pairs remove landed meanwhile
            await self.executor.abandon(row, "the pair is being removed")
            return
        await self.executor.send(row)
        await self.executor.poll_fills()

    # -- protection ------------------------------------------------------------------------

    async def _protection_loop(self) -> None:
        await self.recovery.prepared.wait()
        passes = 0
        while True:
            await asyncio.sleep(self.trading.protection_interval_s)
            if not self._running:
                return
            passes += 1
            async with self._work.unit():
                await self._protection_pass(passes)

    async def _protection_pass(self, passes: int) -> None:
        if self.watch.down:  # the feed retries its candle; here only look whether the database is back
            if self._in_hand is None and await self.watch.probe():
                try:
                    await self.watch.recovered()
                except Exception as exc:
                    if not is_database_outage(exc):
                        raise
            return
        try:
            if passes % 10 == 0:
                for note in await self.executor.resend_unsent(state=self.state.state, priced=self.md):
                    log.info("order retry: %s", note)
            await self.executor.poll_fills()
            for pair in self.pairs:
                await self.manual.before_protect(pair)
                await self.exits.protect(pair)
            await self._check_circuit_breakers()
        except Exception as exc:
            if is_database_outage(exc):
                self.watch.failed(exc, "protection")
                return
            if isinstance(exc, ExchangeError):
                self._exchange_error(exc)
                return
            self.counters["protection_errors"] += 1
            log.exception("protection loop error")
            await self.events.announce(self.db, EngineError.from_exception("protection", exc))

    # -- equity and breakers ---------------------------------------------------------------

    async def _mark_equity(self, candle: Candle | None = None) -> None:
        mark = await self.books.mark(candle)
        if self.state.state == RUNNING:
            breach = self.risk.breach(equity=mark.equity, day_start_equity=mark.day_start_equity,
                                      peak_equity=mark.peak_equity)
            if breach:
                await self.auto_pause(breach)

    async def _check_circuit_breakers(self) -> None:
        self._take_error_burst()  # the executor's failed sends and cancels are counted, not acted on, there
        if self.state.state != RUNNING:
            return
        if self._feed_down_since is not None and time.monotonic() - self._feed_down_since > self.trading.feed_down_s:
            await self.auto_pause(f"market data feed disconnected for more than {self.trading.feed_down_s:.0f}s")
            return
        # live trading always watches freshness: by default two candles plus a minute of grace
        limit = self.trading.stale_data_s or (2 * self.trading.timeframe_s + 60 if self.mode == "live" else 0)
        if limit > 0:
            now = self.clock.now()
            for pair in self.pairs:
                age = self.md.age_s(pair, now)
                if age is not None and age > limit:
                    await self.auto_pause(f"{pair} data is {age:.0f}s old (limit {limit:.0f}s)")
                    return

    def _exchange_error(self, exc: ExchangeError) -> None:
        """Count a venue error the engine met itself and pause entries if it completes a burst."""
        self.errors.record(exc)  # counted there with the executor's (the health view's exchange_errors)
        self._take_error_burst()

    def _take_error_burst(self) -> None:
        """A burst of venue errors (the engine's and the executor's) pauses entries, in a task of the
        engine's own (this is called where no ``await`` is possible); once per burst. A burst that
        completes while trading is already paused or killed is spent there: it does not pause again
        right after a ``/resume``, only a new burst does."""
        if AUTO_PAUSE_TASK in self._tasks.running():
            return
        n = self.errors.take()
        if n and self.state.state == RUNNING:
            self._tasks.spawn(AUTO_PAUSE_TASK, self._breaker_pause(
                f"{n} exchange errors within {self.errors.window_s:.0f}s"))

    async def _breaker_pause(self, reason: str) -> None:
        """The error-burst pause. When the database cannot store it, entries are paused in memory at
        once, as in any outage, and the pause is stored with its reason once the database is back; any
        other failure ends the task, which reports it (see :meth:`_task_failed`)."""
        try:
            await self.auto_pause(reason)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            self.watch.failed(exc, "breaker")
            if self.watch.paused:  # stored as this breaker's pause when the database answers again
                self.states.hold(PAUSED, reason, "risk", self.states.current.changed_at or datetime.now(UTC))

    async def auto_pause(self, reason: str) -> None:
        if self.state.state != RUNNING:
            return
        await self.states.change(PAUSED, reason, "risk", extra=(AutoPaused(reason=reason),))

    # -- intents and TradingService queries ------------------------------------------------

    async def submit(self, intent: Intent) -> IntentResult:
        if isinstance(intent, PAIR_INTENTS):
            return await self.pair_set.apply(intent)
        return await self.control.submit(intent)

    async def status(self) -> StatusView:
        return await self.queries.status()

    async def positions(self) -> list[PositionView]:
        return await self.queries.positions()

    async def balances(self) -> list[BalanceView]:
        return await self.queries.balances()

    async def pnl(self, period: str) -> PnlSummary:
        return await self.queries.pnl(period)

    async def periods(self, unit: str, count: int) -> list[PeriodPnl]:
        return await self.queries.periods(unit, count)

    async def trades(self, count: int) -> list[TradeView]:
        return await self.queries.trades(count)

    async def performance(self) -> list[PairPerformance]:
        return await self.queries.performance()

    async def health(self) -> HealthView:
        rec = self.recovery
        recovery = (f"done in {rec.took_s:.1f}s" if rec.done.is_set() and rec.took_s is not None
                    else "waiting for prices" if rec.prepared.is_set() else "running")
        return await self.queries.health(Liveness(running=self._running, failed=self.failed is not None,
                                                  recovery=recovery, database_down_since=self.watch.since,
                                                  database_retries=self.watch.retries,
                                                  exchange_errors=self.errors.total))
