"""The kill switch: the most reliable path in the system.

1. Flip the in-memory state to ``killed`` before the first ``await`` (no entry can start after this
   line), then persist it, retrying until the database accepts it.
2. Cancel every open order and flatten every open position *concurrently* (one round trip of
   latency, not one per order); flattening orders are written in a single transaction first.
3. Repeat rounds until the venue confirms: no open orders, no open positions; a flatten refused
   because funds were still locked by an order being cancelled is simply retried next round.
4. Emit one :class:`~core.events.Killed` event listing exactly what was done (or what is left),
   with how long the venue took to acknowledge every cancel and close and to confirm all is flat.

The engine stays killed across restarts until an admin re-arms it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlmodel import col, select

from core import accounting
from core.events import Killed, StateChanged
from core.executor import OrderSpec
from core.queries import closed_position
from core.intents import ClosedPosition, IntentResult, OpenItem
from core.state import KILLED, TradingState
from exchanges.base import Side
from persistence.models import OrderRow, PositionRow

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger("tradectl.kill")


class KillSwitch:
    def __init__(self, engine: "Engine", *, timeout_s: float = 60.0, round_pause_s: float = 0.25) -> None:
        self.e = engine
        self.timeout_s = timeout_s
        self.round_pause_s = round_pause_s
        self._lock = asyncio.Lock()
        self.acknowledged_s: float | None = None  # last kill: intent -> every cancel and close acknowledged
        self.flat_s: float | None = None  # last kill: intent -> venue confirmed nothing open
        # what the current kill did, as values for its result and its alert
        self._closed: list[ClosedPosition] = []
        self._cancelled: list[OpenItem] = []
        self._left: list[OpenItem] = []

    async def kill(self, by: str, reason: str) -> IntentResult:
        e = self.e
        started = time.perf_counter()
        self.acknowledged_s = self.flat_s = None
        previous = e.state.state
        now = datetime.now(UTC)  # wall-clock time: this is an operator's action, even during a replay
        e.state = TradingState(KILLED, reason, by, now)
        changed = StateChanged(state=KILLED, previous=previous, by=by, reason=reason)
        for attempt in range(50):
            try:
                e.state = await e.state_store.save(KILLED, reason, by, now, stage=lambda s: e.events.stage(s, changed))
                break
            except Exception:  # noqa: BLE001 - persisting "killed" must not give up quickly
                log.exception("could not persist killed state (attempt %d)", attempt + 1)
                await asyncio.sleep(0.1)
        return await self.finish(by, started)

    async def finish(self, by: str, started: float) -> IntentResult:
        """Steps 2-4 for a state already ``killed``: also how a restart completes a kill it interrupted."""
        e = self.e
        self.acknowledged_s = self.flat_s = None
        async with self._lock:
            self._closed, self._cancelled, self._left = [], [], []
            report, complete = await self._flatten_everything(by, started)
        if complete:
            self.flat_s = time.perf_counter() - started
        killed = Killed(by=by, complete=complete, reason=e.state.reason, closed=tuple(self._closed),
                        cancelled=tuple(self._cancelled), left=tuple(self._left),
                        acknowledged_s=self.acknowledged_s, flat_s=self.flat_s)
        try:
            await e.events.record(e.db, killed)
        except Exception:  # noqa: BLE001 - the report must still reach the console and the caller
            log.exception("could not store the kill report alert")
            e.events.publish(killed)
        head = "killed: all orders cancelled and positions flattened" if complete else \
            "killed, but NOT everything is flat yet: see the report; retrying continues with /kill"
        return IntentResult(complete, head, tuple(report), closed=killed.closed, cancelled=killed.cancelled,
                            pending=killed.left, acknowledged_s=killed.acknowledged_s, flat_s=killed.flat_s)

    async def _flatten_everything(self, by: str, started: float) -> tuple[list[str], bool]:
        e = self.e
        report: list[str] = []
        cancelled: set[str] = set()
        reported: set[int] = set()
        deadline = time.monotonic() + self.timeout_s
        while True:
            orders = [o for o in await e.executor.open_orders() if o.purpose != "kill"]
            async with e.db.read() as s:
                positions = await accounting.open_positions(s)
                kill_orders = list((await s.exec(select(OrderRow).where(
                    OrderRow.purpose == "kill", col(OrderRow.status).in_(("new", "submitted", "partially_filled"))))).all())
            busy = {o.position_id for o in kill_orders if o.status != "new"}
            open_ids = {p.id for p in positions}
            for o in kill_orders:  # written by an earlier round or a run a crash ended: only for what is open
                if o.status == "new" and (o.position_id not in open_ids or o.position_id in busy):
                    await e.executor.void(o, f"position #{o.position_id} is no longer open" if o.position_id not in
                                          open_ids else f"position #{o.position_id} is already being closed")
            unsent: list[OrderRow] = []
            for o in kill_orders:  # one unsent kill order per position
                if o.status == "new" and all(u.position_id != o.position_id for u in unsent):
                    unsent.append(o)
            to_close = [p for p in positions if p.id not in busy and p.id not in {o.position_id for o in unsent}]
            if not orders and not positions:
                return (report or ["nothing was open: no orders to cancel, no positions to close"]), True
            results = await asyncio.gather(e.executor.cancel_many(orders), self._close(to_close, unsent, by),
                                           return_exceptions=True)
            cancel_results = results[0] if isinstance(results[0], list) else []
            sent_all = results[1] is True
            cancelled_all = len(cancel_results) == len(orders) and all(ok is True for ok in cancel_results)
            clean = bool(orders or to_close or unsent) and sent_all and cancelled_all
            if clean and self.acknowledged_s is None:
                self.acknowledged_s = time.perf_counter() - started
            for r in results:
                if isinstance(r, BaseException):
                    log.error("kill round step failed: %r", r)
            for o, ok in zip(orders, cancel_results, strict=False):
                if ok is True and o.client_order_id not in cancelled:
                    cancelled.add(o.client_order_id)
                    report.append(f"cancelled {o.side} {o.qty} {o.pair} ({o.purpose}, {o.client_order_id})")
                    self._cancelled.append(OpenItem(pair=o.pair, qty=o.qty, what="order", side=o.side, purpose=o.purpose))
            try:
                await e.executor.poll_fills()
            except Exception:  # noqa: BLE001
                log.exception("kill: polling fills failed")
            async with e.db.read() as s:
                for p in positions:
                    fresh = await s.get(PositionRow, p.id)
                    if fresh is not None and fresh.status == "closed" and fresh.id not in reported:
                        reported.add(fresh.id)  # type: ignore[arg-type]
                        report.append(f"closed {fresh.exit_qty} {fresh.pair} @ {accounting.exit_price(fresh)}, "
                                      f"PnL {fresh.realized_pnl.quantize(Decimal('0.01'))}")
                        self._closed.append(closed_position(fresh))
            if time.monotonic() > deadline:
                async with e.db.read() as s:
                    left = await accounting.open_positions(s)
                left_orders = [o for o in await e.executor.open_orders() if o.purpose != "kill"]
                for p in left:
                    report.append(f"STILL OPEN: {p.qty} {p.pair}")
                    self._left.append(OpenItem(pair=p.pair, qty=p.qty))
                for o in left_orders:
                    report.append(f"STILL OPEN ORDER: {o.client_order_id} {o.pair}")
                    self._left.append(OpenItem(pair=o.pair, qty=o.qty, what="order", side=o.side, purpose=o.purpose))
                return report, not left and not left_orders
            # a round the venue fully acknowledged is verified at once; otherwise give it a moment
            await asyncio.sleep(0 if clean else self.round_pause_s)

    async def _close(self, positions: list[PositionRow], unsent: list[OrderRow], by: str) -> bool:
        e = self.e
        specs = []
        for p in positions:
            qty = e.markets[p.pair].round_qty(p.qty) if p.pair in e.markets else p.qty
            if qty > 0:
                specs.append(OrderSpec(pair=p.pair, side=Side.SELL, qty=qty, purpose="kill", position_id=p.id,
                                       reason="kill switch", requested_by=by))
        rows = await e.executor.prepare(specs) if specs else []
        return await e.executor.send_many([*rows, *unsent])
