"""The trading engine: one code path for replay, backtest, paper and live.

It runs on an injected clock, market-data feed and exchange. Owned tasks (under a
:class:`~core.lifecycle.Supervisor`):

- ``engine:feed``: consumes the feed; each closed candle updates market data, lets market hooks
  run (the paper venue matches resting orders there), applies new fills, checks stops against the
  candle's range, runs the strategy scan for that pair, snapshots equity and checks the breakers.
- ``engine:protection``: every ``trading.protection_interval_s`` (about 1 s) pulls fills and checks
  stops, take-profits and trailing stops against the freshest price, independent of the scan.
- ``engine:recovery``: the start-up phase (:mod:`core.recovery`); the other two wait for its first
  part, so :meth:`Engine.start` itself returns at once.

A candle counts once it is fully processed: its last step stores the replay cursor. A database
outage stops the feed on the candle in hand, which is retried until it goes through
(:mod:`core.outage`); every step of a candle is idempotent, so a retried or re-fed candle takes
effect once.

Strategies run in a worker thread with a time budget, so a slow scan never blocks the event loop:
commands, the protection loop and :meth:`Engine.kill` keep working while it is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import col, select

from core import accounting
from core.events import AutoPaused, EngineError, Event, EventBus, ReconcileDifference, Rearmed, StateChanged
from core.executor import Executor, OrderSpec
from core.intents import ClosedPosition, ClosePosition, CloseAll, Intent, IntentResult, Kill, OpenItem, PauseEntries, Rearm, Resume
from core.kill import KillSwitch
from core.market_data import MarketData
from core.order_reasons import EXIT_PURPOSES
from core.outage import DatabaseWatch, is_database_outage
from core.queries import Queries, closed_position
from core.recovery import Recovery
from core.risk import Portfolio, RiskManager, TradeStats
from core.settings_models import TradingSettings
from core.state import KILLED, PAUSED, RUNNING, StateStore, TradingState
from core.views import BalanceView, HealthView, PairPerformance, PeriodPnl, PnlSummary, PositionView, StatusView, TradeView
from exchanges.base import Candle, Exchange, FeedStatus, Market, MarketEvent, Side, Ticker
from exchanges.clock import Clock
from exchanges.errors import ExchangeError
from persistence.db import Database
from persistence.models import EquitySnapshot, OrderRow, PositionRow, RuntimeValue
from strategies.base import Candles, Direction, Signal

log = logging.getLogger("tradectl.engine")
Evaluate = Callable[[str, Candles, Candles | None], Signal]
MarketHook = Callable[[MarketEvent], Awaitable[None]]
ZERO = Decimal(0)


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
        recovery_wait_s: float = 60.0,
        stale_command_s: float = 120.0,
    ) -> None:
        self.db, self.venue, self.md, self.clock, self.events = db, exchange, market_data, clock, events
        self.risk, self.executor, self.state_store = risk, executor, state
        self.trading = trading
        self._feed = feed
        self._evaluate = evaluate
        self._hooks = market_hooks
        self._htf = higher_timeframe_s
        self.tz = timezone
        self.mode = mode
        self.instance_id = instance_id
        self._leader = leader
        self._on_feed_end = on_feed_end
        self.state = TradingState(RUNNING, "", "", None)
        self.markets: dict[str, Market] = {}
        self.counters: Counter[str] = Counter()
        self._errors: deque[float] = deque(maxlen=100)
        self._exiting: set[int] = set()
        self._intent_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0  # loop work in progress (see _working)
        self._quiet = asyncio.Event()  # set while _busy == 0
        self._quiet.set()
        self._started_wall = time.monotonic()
        self._feed_down_since: float | None = None
        self._day_start: tuple[datetime, Decimal] | None = None
        self._peak_equity = ZERO
        self._last_equity: Decimal | None = None
        self.kill_switch = KillSwitch(self)
        self.queries = Queries(self)
        self.watch = DatabaseWatch(self)
        self.recovery = Recovery(self, wait_s=recovery_wait_s, stale_command_s=stale_command_s)
        self._in_hand: tuple[str, datetime] | None = None  # the candle being processed (see on_candle)
        self.executor.on_position_closed = self._position_closed
        self._running = False

    @property
    def pairs(self) -> tuple[str, ...]:
        return self.trading.pairs

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, supervisor_spawn: Callable[[str, object], object] | None = None) -> None:
        """Load the state and the markets, complete the state of an interrupted ``/kill``, and start
        the tasks. Returns at once: recovery runs in ``engine:recovery`` (await
        ``engine.recovery.prepared`` to know the feed is running)."""
        if self._running:
            return
        self.state = await self.state_store.load()
        self.markets = await self.venue.markets()
        for pair in self.pairs:
            if pair not in self.markets:
                raise ValueError(f"pair {pair} is not traded on {self.venue.name}")
        await self.recovery.begin()
        self._running = True
        self._tasks = [asyncio.create_task(self.recovery.run(), name="engine:recovery"),
                       asyncio.create_task(self._feed_loop(), name="engine:feed"),
                       asyncio.create_task(self._protection_loop(), name="engine:protection")]
        for task in self._tasks:
            task.add_done_callback(self._task_done)
        log.info("engine started: state %s, pairs %s", self.state.state, ", ".join(self.pairs))

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("engine task %s failed", task.get_name(), exc_info=exc)
            self.events.publish(EngineError.from_exception(task.get_name(), exc))
            self.failed = exc
            if self.on_failure is not None and exc is not None:
                self.on_failure(exc)

    failed: BaseException | None = None
    on_failure: Callable[[BaseException], None] | None = None
    strategy_set: object = None

    async def stop(self, grace_s: float = 1.0) -> None:
        """Finish the candle or protection pass in progress, then stop the loops. They are cancelled
        only while idle (or after ``grace_s``): cancelling one mid-transaction could leave orders
        half-recorded and, on SQLite, the database locked. The grace is short because a leader that
        lost its lease stops here too: it must not keep trading into the next leader's term."""
        if not self._running:
            return
        self._running = False
        if self._busy:
            try:
                await asyncio.wait_for(self._quiet.wait(), grace_s)
            except TimeoutError:
                log.warning("engine work still running after %.0fs; cancelling it", grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        """Marks a unit of loop work (one candle, one protection pass) that stop() lets finish."""
        self._busy += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._quiet.set()

    # -- feed ------------------------------------------------------------------------------

    async def _feed_loop(self) -> None:
        await self.recovery.prepared.wait()
        async for event in self._feed:
            while True:  # the same event again while the database is unreachable: none is skipped
                if not self._running:
                    return
                async with self._working():
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
        except Exception as exc:  # noqa: BLE001 - one bad event must not end the feed
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
            except Exception as exc:  # noqa: BLE001 - down again: the alert waits for the next success
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
        await self._protect(c.pair, low=c.low, high=c.high)
        await self._scan(c.pair)
        await self._mark_equity(c)
        self._in_hand = None

    # -- strategy scan ---------------------------------------------------------------------

    async def _scan(self, pair: str) -> None:
        if self.md.bars(pair) < 2:
            return
        window = self.md.window(pair, self.trading.history_bars)
        htf = self.md.window(pair, 200, self._htf) if self._htf else None
        self.counters["scans"] += 1
        try:
            signal = await asyncio.wait_for(asyncio.to_thread(self._evaluate, pair, window, htf),
                                            self.trading.scan_timeout_s)
        except TimeoutError:
            self.counters["scan_timeouts"] += 1
            log.warning("strategy scan for %s exceeded %.1fs", pair, self.trading.scan_timeout_s)
            return
        except Exception as exc:  # noqa: BLE001 - contained and counted
            self.counters["scan_errors"] += 1
            log.exception("strategy scan for %s failed", pair)
            await self.events.announce(self.db, EngineError.from_exception(f"scan:{pair}", exc))
            return
        pos = await self._open_position(pair)
        if signal.direction == Direction.SELL and pos is not None and pos.status == "open":
            await self.exit_position(pos, purpose="exit", reason=signal.reason, by="strategy")
        elif signal.direction == Direction.BUY and pos is None:
            await self._enter(pair, signal)

    async def _enter(self, pair: str, signal: Signal) -> None:
        if self.state.state != RUNNING:
            self.counters["entries_skipped_not_running"] += 1
            return
        price = self.md.price(pair)
        if price is None:
            return
        portfolio = await self.portfolio()
        stats = await self._trade_stats()
        decision = self.risk.check_entry(pair=pair, price=price, suggested_stop=signal.stop, market=self.markets[pair],
                                         portfolio=portfolio, stats=stats, now=self.clock.now())
        if not decision.approved:
            self.counters["entries_rejected"] += 1
            log.debug("entry %s rejected: %s", pair, decision.reason)
            return
        pos = PositionRow(pair=pair, status="pending", stop_price=decision.stop,
                          take_profit=signal.take_profit, trailing_pct=self.risk.s.trailing_stop_pct,
                          high_water=price, strategy=signal.strategy, reason=signal.reason[:500],
                          opened_at=self.clock.now())
        _, row = await self.executor.prepare_entry(pos, OrderSpec(pair=pair, side=Side.BUY, qty=decision.qty,
                                                                  purpose="entry", position_id=None,
                                                                  reason=signal.reason))
        if self.state.state != RUNNING:  # a kill or pause landed while we were writing
            await self.executor.abandon(row, "entries stopped before sending")
            return
        await self.executor.send(row)
        await self.executor.poll_fills()

    # -- exits and protection --------------------------------------------------------------

    async def exit_position(self, pos: PositionRow, *, purpose: str, reason: str, by: str) -> bool:
        """Sell the position at market, unless trading is killed (the kill flattens with its own
        orders) or another order is already closing it."""
        assert pos.id is not None
        if pos.id in self._exiting or pos.qty <= 0 or self.state.state == KILLED:
            return False
        self._exiting.add(pos.id)
        try:
            async with self.db.session() as s:
                fresh = await s.get(PositionRow, pos.id)
                if fresh is None or fresh.status != "open":
                    return False
                closing = (await s.exec(select(OrderRow.client_order_id).where(
                    OrderRow.position_id == pos.id, col(OrderRow.status).in_(("new", "submitted", "partially_filled")),
                    col(OrderRow.purpose).in_(EXIT_PURPOSES | {"kill"})))).first()
                if closing is not None:
                    self.counters["exits_already_in_progress"] += 1
                    return False
                fresh.exit_reason = purpose
                s.add(fresh)
            self.executor.version += 1
            qty = self.markets[pos.pair].round_qty(pos.qty) if pos.pair in self.markets else pos.qty
            if qty <= 0:
                return False
            await self.executor.place(OrderSpec(pair=pos.pair, side=Side.SELL, qty=qty, purpose=purpose,
                                                position_id=pos.id, reason=reason, requested_by=by))
            await self.executor.poll_fills()
            return True
        finally:
            self._exiting.discard(pos.id)

    async def _protect(self, pair: str, *, low: Decimal | None = None, high: Decimal | None = None) -> None:
        pos = await self._open_position(pair)
        if pos is None or pos.status != "open":
            return
        price = self.md.price(pair)
        if price is None:
            return
        low = low if low is not None else price
        high = high if high is not None else price
        if pos.trailing_pct and high > (pos.high_water or ZERO):
            new_stop = self.markets[pair].round_price(high * (1 - pos.trailing_pct))
            async with self.db.session() as s:
                fresh = await s.get(PositionRow, pos.id)
                if fresh is not None:
                    fresh.high_water = high
                    if fresh.stop_price is None or new_stop > fresh.stop_price:
                        fresh.stop_price = new_stop
                    s.add(fresh)
                    pos = fresh
            self.executor.version += 1
        if pos.stop_price is not None and low <= pos.stop_price:
            purpose = "trailing" if pos.trailing_pct else "stop"
            await self.exit_position(pos, purpose=purpose, reason=f"price {low} <= stop {pos.stop_price}", by="protection")
        elif pos.take_profit is not None and high >= pos.take_profit:
            await self.exit_position(pos, purpose="take_profit", reason=f"price {high} >= target {pos.take_profit}",
                                     by="protection")

    async def _protection_loop(self) -> None:
        await self.recovery.prepared.wait()
        passes = 0
        while True:
            await asyncio.sleep(self.trading.protection_interval_s)
            if not self._running:
                return
            passes += 1
            async with self._working():
                await self._protection_pass(passes)

    async def _protection_pass(self, passes: int) -> None:
        if self.watch.down:  # the feed retries its candle; here only look whether the database is back
            if self._in_hand is None and await self.watch.probe():
                try:
                    await self.watch.recovered()
                except Exception as exc:  # noqa: BLE001
                    if not is_database_outage(exc):
                        raise
            return
        try:
            if passes % 10 == 0:
                for note in await self.executor.resend_unsent(state=self.state.state,
                                                              priced=lambda pair: self.md.price(pair) is not None):
                    log.info("order retry: %s", note)
            await self.executor.poll_fills()
            for pair in self.pairs:
                await self._protect(pair)
            await self._check_circuit_breakers()
        except Exception as exc:  # noqa: BLE001 - the loop must survive
            if is_database_outage(exc):
                self.watch.failed(exc, "protection")
                return
            if isinstance(exc, ExchangeError):
                self._exchange_error(exc)
                return
            self.counters["protection_errors"] += 1
            log.exception("protection loop error")
            await self.events.announce(self.db, EngineError.from_exception("protection", exc))

    def _position_closed(self, pos: PositionRow) -> None:
        self.risk.record_exit(pos.pair, pos.realized_pnl, pos.closed_at or self.clock.now())
        self._stats_cache = None

    # -- portfolio, equity, breakers -------------------------------------------------------

    async def _open_position(self, pair: str) -> PositionRow | None:
        """The pair's pending or open position. Cached until the executor reports a change, so a
        quiet candle costs no position query."""
        version = self.executor.version
        if self._pos_cache is None or self._pos_cache[0] != version:
            async with self.db.read() as s:
                stmt = select(PositionRow).where(col(PositionRow.status).in_(("pending", "open")))
                rows = (await s.exec(stmt.order_by(col(PositionRow.id)))).all()
            self._pos_cache = (version, {r.pair: r for r in rows})
        return self._pos_cache[1].get(pair)

    _pos_cache: tuple[int, dict[str, PositionRow]] | None = None

    async def portfolio(self) -> Portfolio:
        balances = await self.venue.balances()
        quote = self.trading.quote
        cash = balances.get(quote)
        exposure: dict[str, Decimal] = {}
        async with self.db.read() as s:
            positions = await accounting.open_positions(s)
            pending = (await s.exec(select(PositionRow).where(PositionRow.status == "pending"))).all()
        for p in positions:
            exposure[p.pair] = exposure.get(p.pair, ZERO) + p.qty * (self.md.price(p.pair) or accounting.entry_price(p))
        for p in pending:
            exposure.setdefault(p.pair, Decimal("0.00000001"))
        equity = await self.equity(balances)
        return Portfolio(equity=equity, cash_available=cash.available if cash else ZERO,
                         exposure_by_pair=exposure, open_positions=len(positions) + len(pending))

    async def equity(self, balances: dict | None = None) -> Decimal:
        balances = balances if balances is not None else await self.venue.balances()
        quote = self.trading.quote
        total = balances[quote].total if quote in balances else ZERO
        for pair in self.pairs:
            base = pair.split("/")[0]
            if base in balances and balances[base].total:
                total += balances[base].total * (self.md.price(pair) or ZERO)
        return total

    _stats_cache: TradeStats | None = None

    async def _trade_stats(self) -> TradeStats:
        if self._stats_cache is None:
            async with self.db.read() as s:
                st = accounting.trade_stats(await accounting.closed_positions(s))
            self._stats_cache = TradeStats(st.trades, st.wins, st.avg_win, st.avg_loss)
        return self._stats_cache

    async def _restore_equity_marks(self) -> None:
        async with self.db.read() as s:
            points = await accounting.equity_points(s)
        if points:
            self._peak_equity = max(v for _, v in points)

    async def _mark_equity(self, candle: Candle | None = None) -> None:
        """Snapshot equity and, in the same transaction, remember the candle just processed (the
        replay resumes after it)."""
        balances = await self.venue.balances()
        equity = await self.equity(balances)
        cash = balances[self.trading.quote].total if self.trading.quote in balances else ZERO
        now = self.clock.now()
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
        self._last_equity = equity
        self._peak_equity = max(self._peak_equity, equity)
        day = accounting.period_start(now, "day", self.tz)
        if self._day_start is None or self._day_start[0] != day:
            self._day_start = (day, equity)
        if self.state.state == RUNNING:
            breach = self.risk.breach(equity=equity, day_start_equity=self._day_start[1], peak_equity=self._peak_equity)
            if breach:
                await self.auto_pause(breach)

    async def _check_circuit_breakers(self) -> None:
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
        self.counters["exchange_errors"] += 1
        now = time.monotonic()
        self._errors.append(now)
        recent = [t for t in self._errors if now - t <= self.trading.error_window_s]
        log.warning("exchange error: %s", exc)
        if len(recent) >= self.trading.error_burst and self.state.state == RUNNING:
            asyncio.get_running_loop().create_task(
                self.auto_pause(f"{len(recent)} exchange errors within {self.trading.error_window_s:.0f}s"),
                name="engine:auto-pause")

    async def auto_pause(self, reason: str) -> None:
        if self.state.state != RUNNING:
            return
        await self._set_state(PAUSED, reason, "risk", extra=(AutoPaused(reason=reason),))

    async def _set_state(self, state: str, reason: str, by: str, extra: tuple[Event, ...] = ()) -> None:
        previous = self.state.state
        changed = StateChanged(state=state, previous=previous, by=by, reason=reason)

        def stage(session: object) -> None:
            for ev in (changed, *extra):
                self.events.stage(session, ev)

        # operator-facing state changes carry wall-clock time, even while replaying history
        self.state = await self.state_store.save(state, reason, by, datetime.now(UTC), stage=stage)

    # -- reconciliation --------------------------------------------------------------------

    async def reconcile(self) -> list[ReconcileDifference]:
        """Compare venue balances with our open positions; differences become events, not fixes."""
        diffs: list[ReconcileDifference] = []
        balances = await self.venue.balances()
        async with self.db.read() as s:
            positions = await accounting.open_positions(s)
        held: dict[str, Decimal] = {}
        for p in positions:
            base = p.pair.split("/")[0]
            held[base] = held.get(base, ZERO) + p.qty
        for pair in self.pairs:
            base = pair.split("/")[0]
            ours = held.get(base, ZERO)
            venue = balances[base].total if base in balances else ZERO
            if ours > venue:
                diffs.append(ReconcileDifference(what=f"{base} held", ours=str(ours), venue=str(venue)))
        for d in diffs:
            await self.events.record(self.db, d)
        return diffs

    # -- intents ---------------------------------------------------------------------------

    async def submit(self, intent: Intent) -> IntentResult:
        if isinstance(intent, Kill):
            return await self.kill_switch.kill(intent.requested_by, intent.reason)
        async with self._intent_lock:
            return await self._apply(intent)

    async def _apply(self, intent: Intent) -> IntentResult:
        st = self.state.state
        by = intent.requested_by
        if isinstance(intent, PauseEntries):
            if st == KILLED:
                return IntentResult(False, "trading is killed; nothing to pause (an admin can /rearm)")
            if st == PAUSED:
                return IntentResult(True, f"already paused ({self.state.reason})")
            await self._set_state(PAUSED, intent.reason, by)
            return IntentResult(True, "entries paused; open positions are still managed (stops, exits)")
        if isinstance(intent, Resume):
            if st == KILLED:
                return IntentResult(False, "trading is killed; an admin must /rearm first")
            if st == RUNNING:
                return IntentResult(True, "already running")
            await self._set_state(RUNNING, "resumed", by)
            return IntentResult(True, "trading resumed")
        if isinstance(intent, Rearm):
            if st != KILLED:
                return IntentResult(False, f"trading is {st}, not killed; nothing to re-arm")
            await self._set_state(PAUSED, "re-armed after kill; /resume to trade", by, extra=(Rearmed(by=by),))
            return IntentResult(True, "re-armed: trading is paused; /resume starts entries")
        if isinstance(intent, (ClosePosition, CloseAll)) and st == KILLED:
            return IntentResult(False, "trading is killed: the kill closes every position itself (/kill again retries it)")
        if isinstance(intent, ClosePosition):
            if intent.pair not in self.pairs:
                return IntentResult(False, f"unknown pair {intent.pair!r}; traded pairs: {', '.join(self.pairs)}")
            pos = await self._open_position(intent.pair)
            if pos is None or pos.status != "open":
                return IntentResult(False, f"no open position in {intent.pair}")
            return await self._close([pos], by)
        if isinstance(intent, CloseAll):
            async with self.db.read() as s:
                positions = await accounting.open_positions(s)
            if not positions:
                return IntentResult(True, "no open positions")
            return await self._close(positions, by)
        return IntentResult(False, f"unsupported intent {type(intent).__name__}")

    async def _close(self, positions: list[PositionRow], by: str) -> IntentResult:
        await asyncio.gather(*(self.exit_position(p, purpose="close", reason=f"closed by {by}", by=by) for p in positions))
        await self.executor.poll_fills()
        closed: list[ClosedPosition] = []
        pending: list[OpenItem] = []
        async with self.db.read() as s:
            for p in positions:
                fresh = await s.get(PositionRow, p.id)
                if fresh is not None and fresh.status == "closed":
                    closed.append(closed_position(fresh))
                else:
                    pending.append(OpenItem(pair=p.pair, qty=p.qty))
        return IntentResult(True, f"closing {len(positions)} position(s)", closed=tuple(closed), pending=tuple(pending))

    # -- TradingService queries (delegated) ----------------------------------------------

    async def status(self) -> StatusView:
        return await self.queries.status()

    async def positions(self) -> list[PositionView]:
        return await self.queries.positions()

    async def balances(self) -> list[BalanceView]:
        return await self.queries.balances()

    async def pnl(self, period: str) -> PnlSummary:  # type: ignore[override]
        return await self.queries.pnl(period)

    async def periods(self, unit: str, count: int) -> list[PeriodPnl]:
        return await self.queries.periods(unit, count)

    async def trades(self, count: int) -> list[TradeView]:
        return await self.queries.trades(count)

    async def performance(self) -> list[PairPerformance]:
        return await self.queries.performance()

    async def health(self) -> HealthView:
        return await self.queries.health()

    def leader(self) -> str | None:
        return self._leader()

    def uptime_s(self) -> float:
        return time.monotonic() - self._started_wall
