"""The kill switch: the most reliable path in the system.

1. Flip the in-memory state to ``killed`` before the first ``await`` (no entry can start after this
   line), then persist it, retrying until the database accepts it.
2. Cancel every open order and flatten every open position *concurrently* (one round trip of
   latency, not one per order); flattening orders are written in a single transaction first.
3. Repeat rounds until the venue confirms: no open orders, no open positions; a flatten refused
   because funds were still locked by an order being cancelled is simply retried next round.
4. Emit one :class:`~core.trading.events.Killed` event listing exactly what was done (or what is left),
   with how long the venue took to acknowledge every cancel and close and to confirm all is flat.

The engine stays killed across restarts until an admin re-arms it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import col, select

from core.trading import accounting
from core.trading.events import EventBus, Killed
from core.trading.executor import Executor
from core.trading.intents import ClosedPosition, IntentResult, OpenItem, OpenKind
from core.trading.queries import closed_position
from core.trading.sells import NoSell, SellAsk, write_sells
from core.trading.state import KILLED, TradingStates
from core.trading.values import OPEN_STATES, OrderPurpose, PositionStatus, known_purpose, market_rules
from exchanges.base import Market, OrderStatus, Side
from persistence.db import Database
from persistence.models import OrderRow, PositionRow

log = logging.getLogger("tradectl.kill")


class KillSwitch:
    """``markets`` is the engine's mapping of the venue's markets (filled when the engine starts), to
    round what is sold to the venue's step."""

    def __init__(self, *, db: Database, executor: Executor, states: TradingStates, events: EventBus,
                 markets: Mapping[str, Market], timeout_s: float = 60.0, round_pause_s: float = 0.25) -> None:
        self.db, self.executor, self.states, self.events, self.markets = db, executor, states, events, markets
        self.timeout_s = timeout_s
        self.round_pause_s = round_pause_s
        self._lock = asyncio.Lock()
        self.acknowledged_s: float | None = None  # last kill: intent -> every cancel and close acknowledged
        self.flat_s: float | None = None  # last kill: intent -> venue confirmed nothing open
        # what the current kill did, as values for its result and its alert
        self._closed: list[ClosedPosition] = []
        self._cancelled: list[OpenItem] = []
        self._left: list[OpenItem] = []
        self._deferred = False  # this round left a position's sell to the next (a working exit held it)

    async def kill(self, by: str, reason: str) -> IntentResult:
        started = time.perf_counter()
        self.acknowledged_s = self.flat_s = None
        previous = self.states.state
        now = datetime.now(UTC)  # wall-clock time: this is an operator's action, even during a replay
        self.states.hold(KILLED, reason, by, now)  # before the first await: no entry can start after this
        await self.states.change(KILLED, reason, by, at=now, previous=previous, attempts=50)
        return await self.finish(by, started)

    async def finish(self, by: str, started: float) -> IntentResult:
        """Steps 2-4 for a state already ``killed``: also how a restart completes a kill it interrupted."""
        self.acknowledged_s = self.flat_s = None
        async with self._lock:
            self._closed, self._cancelled, self._left = [], [], []
            report, complete = await self._flatten_everything(by, started)
        if complete:
            self.flat_s = time.perf_counter() - started
        killed = Killed(by=by, complete=complete, reason=self.states.current.reason, closed=tuple(self._closed),
                        cancelled=tuple(self._cancelled), left=tuple(self._left),
                        acknowledged_s=self.acknowledged_s, flat_s=self.flat_s)
        try:
            await self.events.record(self.db, killed)
        except Exception:
            log.exception("could not store the kill report alert")
            self.events.publish(killed)
        head = "killed: all orders cancelled and positions flattened" if complete else \
            "killed, but NOT everything is flat yet: see the report; retrying continues with /kill"
        return IntentResult(complete, head, tuple(report), closed=killed.closed, cancelled=killed.cancelled,
                            pending=killed.left, acknowledged_s=killed.acknowledged_s, flat_s=killed.flat_s)

    async def _flatten_everything(self, by: str, started: float) -> tuple[list[str], bool]:
        report: list[str] = []
        cancelled: set[str] = set()
        reported: set[int] = set()
        deadline = time.monotonic() + self.timeout_s
        while True:
            orders = [o for o in await self.executor.open_orders() if o.purpose != OrderPurpose.KILL]
            async with self.db.read() as s:
                positions = await accounting.open_positions(s)
                kill_orders = list((await s.exec(select(OrderRow).where(
                    OrderRow.purpose == OrderPurpose.KILL, col(OrderRow.status).in_(OPEN_STATES)))).all())
            busy = {o.position_id for o in kill_orders if o.status != OrderStatus.NEW}
            open_ids = {p.id for p in positions}
            for o in kill_orders:  # written by an earlier round or a run a crash ended: only for what is open
                if o.status == OrderStatus.NEW and (o.position_id not in open_ids or o.position_id in busy):
                    await self.executor.void(o, f"position #{o.position_id} is no longer open" if o.position_id not in
                                             open_ids else f"position #{o.position_id} is already being closed")
            unsent: list[OrderRow] = []
            for o in kill_orders:  # one unsent kill order per position
                if o.status == OrderStatus.NEW and all(u.position_id != o.position_id for u in unsent):
                    unsent.append(o)
            to_close = [p for p in positions if p.id not in busy and p.id not in {o.position_id for o in unsent}]
            if not orders and not positions:
                if report and self.acknowledged_s is None:  # the last round's close was deferred, then not needed
                    self.acknowledged_s = time.perf_counter() - started
                return (report or ["nothing was open: no orders to cancel, no positions to close"]), True
            cancelling, closing = await asyncio.gather(self.executor.cancel_many(orders),
                                                       self._close(to_close, unsent, by), return_exceptions=True)
            cancel_results = cancelling if isinstance(cancelling, list) else []
            sent_all = closing is True
            cancelled_all = len(cancel_results) == len(orders) and all(ok is True for ok in cancel_results)
            clean = bool(orders or to_close or unsent) and sent_all and cancelled_all
            if clean and self.acknowledged_s is None and not self._deferred:  # a deferred close is not acknowledged
                self.acknowledged_s = time.perf_counter() - started
            for r in (cancelling, closing):
                if isinstance(r, BaseException):
                    log.error("kill round step failed: %r", r)
            try:
                await self.executor.poll_fills()
            except Exception:
                log.exception("kill: polling fills failed")
            filled = await self._filled([o for o, ok in zip(orders, cancel_results, strict=False) if ok is True])
            for o, ok in zip(orders, cancel_results, strict=False):
                if ok is True and o.client_order_id not in cancelled:
                    cancelled.add(o.client_order_id)
                    if o.id in filled:  # the venue had filled it (an exit that sold): not cancelled
                        report.append(f"filled before it could be cancelled: {o.side} {o.qty} {o.pair} "
                                      f"({o.purpose}, {o.client_order_id})")
                        continue
                    report.append(f"cancelled {o.side} {o.qty} {o.pair} ({o.purpose}, {o.client_order_id})")
                    self._cancelled.append(OpenItem(pair=o.pair, qty=o.qty, what=OpenKind.ORDER, side=Side(o.side),
                                                    purpose=known_purpose(o.purpose), qty_step=self._step(o.pair)))
            async with self.db.read() as s:
                for p in positions:
                    fresh = await s.get(PositionRow, p.id)
                    if fresh is not None and fresh.id is not None and fresh.status == PositionStatus.CLOSED \
                            and fresh.id not in reported:
                        reported.add(fresh.id)
                        report.append(f"closed {fresh.exit_qty} {fresh.pair} @ {accounting.exit_price(fresh)}, "
                                      f"PnL {fresh.realized_pnl.quantize(Decimal('0.01'))}")
                        self._closed.append(closed_position(fresh, self.markets))
            if time.monotonic() > deadline:
                async with self.db.read() as s:
                    left = await accounting.open_positions(s)
                left_orders = [o for o in await self.executor.open_orders() if o.purpose != OrderPurpose.KILL]
                for p in left:
                    report.append(f"STILL OPEN: {p.qty} {p.pair}")
                    self._left.append(OpenItem(pair=p.pair, qty=p.qty, qty_step=self._step(p.pair)))
                for o in left_orders:
                    report.append(f"STILL OPEN ORDER: {o.client_order_id} {o.pair}")
                    self._left.append(OpenItem(pair=o.pair, qty=o.qty, what=OpenKind.ORDER, side=Side(o.side),
                                               purpose=known_purpose(o.purpose), qty_step=self._step(o.pair)))
                return report, not left and not left_orders
            # a round the venue fully acknowledged is verified at once; otherwise give it a moment
            await asyncio.sleep(0 if clean else self.round_pause_s)

    def _step(self, pair: str) -> Decimal | None:
        return market_rules(self.markets, pair)[0]

    async def _filled(self, orders: list[OrderRow]) -> set[int | None]:
        """Which of ``orders`` (their cancel answered as final) the venue had filled instead."""
        if not orders:
            return set()
        async with self.db.read() as s:
            return set((await s.exec(select(OrderRow.id).where(
                col(OrderRow.id).in_([o.id for o in orders]), OrderRow.status == OrderStatus.FILLED))).all())

    async def _close(self, positions: list[PositionRow], unsent: list[OrderRow], by: str) -> bool:
        """Sell each position through the guard every sell passes (:mod:`core.trading.sells`), beside the
        orders this round is cancelling: only what they leave free is sold now, the rest in a later round
        once their cancel is confirmed (an exit that fills meanwhile is never sold a second time)."""
        asks = [SellAsk(position_id=p.id, purpose=OrderPurpose.KILL, reason="kill switch", by=by, beside=True,
                        mark_exit=False) for p in positions if p.id is not None]
        answers = await write_sells(self.executor, asks, self.markets)
        held = {p.id: (self.markets[p.pair].round_qty(p.qty) if p.pair in self.markets else p.qty) for p in positions}
        self._deferred = any((isinstance(a, NoSell) and a.busy)
                             or (isinstance(a, OrderRow) and a.qty < held[ask.position_id])
                             for a, ask in zip(answers, asks, strict=True))
        rows = [r for r in answers if isinstance(r, OrderRow)]
        return await self.executor.send_many([*rows, *unsent])
