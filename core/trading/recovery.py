"""Recovery: the engine's first phase after a start, in a task of its own.

:meth:`Engine.start` only loads the state and the markets and starts its tasks, so whoever starts
the engine (the leader's term) is never held up by the venue. This phase then runs before the feed
is consumed:

1. **Confirmed intents first** (:meth:`Recovery.begin`, still inside ``start``): a ``/kill``
   confirmed but not recorded as executed (the process died in between) makes the state ``killed``
   before anything else can run.
2. **Fills**, so positions are what the venue left them before anything is judged.
3. **Every open order** is looked up at the venue: what it has is adopted (and cancelled when the
   state is killed or its position is gone); what it never got is judged by its reason
   (:mod:`core.trading.order_reasons`): voided at once if the reason is gone, else it waits for a price.
4. **Orphans**: a ``pending`` position without a live entry order is voided.
5. Fills again, then **reconciliation** (after the fills: a fill not yet applied is no difference).

Then the feed starts, and the rest needs prices (the paper venue has none before its first candle):

6. a killed state with anything open **finishes the kill** (flattens) once the pairs have a price;
7. confirmed ``/close``, ``/closeall`` and ``/cancel`` a crash interrupted are carried out if confirmed within
   ``chat.stale_command_s``, otherwise recorded as not executed with an alert; a confirmed ``/buy`` or
   ``/sell`` is never run again (the market has moved since it was priced): it is recorded as interrupted,
   with an alert saying where to see whether its order reached the venue;
8. unsent orders that kept their reason are **sent on their pair's first price** (same client order
   id), each judged again at that moment.

The whole phase is bounded by ``wait_s``: what still has no price by then is left to the protection
loop's retries (which judge each order the same way) and said so in the report, one log line and a
:class:`RecoveryReport` alert when anything was voided, cancelled or left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from sqlmodel import col, select

from core.trading import accounting, confirmed
from core.trading.books import Books
from core.trading.confirmed import ConfirmedRequest
from core.trading.control import Control
from core.trading.events import Event, EventBus
from core.trading.executor import Executor, PricedPairs
from core.trading.intents import CancelOrders, CloseAll, ClosePosition, Intent
from core.trading.kill import KillSwitch
from core.trading.market_data import MarketData
from core.trading.outage import DatabaseWatch, is_database_outage
from core.trading.reconciliation import record_differences
from core.trading.state import KILLED, TradingStates
from core.trading.traded import TradedPairs
from core.trading.values import EXIT_PURPOSES, OPEN_STATES, OrderPurpose, PositionStatus
from core.trading.work import Work
from exchanges.base import Exchange, Market, OrderStatus
from exchanges.errors import ExchangeError
from persistence.db import Database
from persistence.models import OrderRow, PositionRow

log = logging.getLogger("tradectl.engine")


@dataclass(frozen=True, kw_only=True)
class RecoveryReport(Event):
    kind: ClassVar[str] = "recovery"
    severity: ClassVar[str] = "warning"
    took_s: float
    lines: tuple[str, ...]

    def summary(self) -> str:
        return f"recovery after start ({self.took_s:.1f}s): " + "; ".join(self.lines)


@dataclass(frozen=True, kw_only=True)
class InterruptedCommand(Event):
    """A confirmed command the process died in the middle of, and what the restart did with it."""

    kind: ClassVar[str] = "interrupted_command"
    severity: ClassVar[str] = "warning"
    command: str
    requested_by: str
    confirmed_at: datetime
    outcome: str

    def summary(self) -> str:
        return (f"/{self.command} confirmed by {self.requested_by} at {self.confirmed_at:%Y-%m-%d %H:%M:%S} UTC "
                f"was interrupted by a restart: {self.outcome}")


class Recovery:
    """What the phase needs comes in here: the engine's parts, not the engine. ``markets`` is the
    engine's mapping of the venue's markets (filled before :meth:`begin`)."""

    def __init__(self, *, db: Database, exchange: Exchange, executor: Executor, states: TradingStates,
                 events: EventBus, market_data: MarketData, markets: Mapping[str, Market], pairs: TradedPairs,
                 kill_switch: KillSwitch, control: Control, books: Books, watch: DatabaseWatch, work: Work,
                 wait_s: float = 60.0, stale_command_s: float = 120.0) -> None:
        self.db, self.venue, self.executor, self.states, self.events = db, exchange, executor, states, events
        self.md, self.markets, self.pairs = market_data, markets, pairs
        self.kill_switch, self.control, self.books, self.watch, self.work = kill_switch, control, books, watch, work
        self.wait_s = wait_s
        self.stale_command_s = stale_command_s
        self.prepared = asyncio.Event()  # steps 1-5 done: the feed may run
        self.done = asyncio.Event()
        self.notes: list[str] = []
        self.took_s: float | None = None
        self.kills: list[ConfirmedRequest] = []
        self._waiting: dict[str, str] = {}  # client order id -> pair, unsent and waiting for a price
        self._priced: dict[str, asyncio.Event] = {}
        self._settled = asyncio.Event()
        self._started = time.monotonic()
        self._began_at = datetime.now(UTC)  # confirmations used later belong to this process, not a crash
        self._alert = False

    # -- step 1, inside Engine.start ----------------------------------------------------------

    async def begin(self) -> None:
        """A confirmed, unexecuted ``/kill`` makes the state ``killed`` now, before any task runs."""
        self._started = time.monotonic()
        self._began_at = datetime.now(UTC)
        kills = await confirmed.unfinished(self.db, ("kill",))
        for k in kills:
            state = self.states.current
            at = state.changed_at
            if state.state != KILLED and at is not None and at > k.confirmed_at and state.changed_by != "risk":
                # a person changed the state after this kill was confirmed (a /rearm, typically: the kill
                # ran and only its record was lost); a breaker's auto-pause is no such evidence
                await confirmed.mark_executed(self.db, k.nonce, f"already handled: trading was set {state.state} "
                                                                f"by {state.changed_by} afterwards")
                continue
            self.kills.append(k)
        if not self.kills:
            return
        k = self.kills[-1]
        reason = " ".join(k.tokens) or f"kill from chat by {k.requested_by}"
        reason = f"{reason} (confirmed {k.confirmed_at:%H:%M:%S} UTC, completed after a restart)"
        if self.states.state != KILLED:
            await self.states.change(KILLED, reason, k.requested_by)
        log.warning("a confirmed /kill by %s was interrupted by a restart: trading is killed; flattening follows",
                    k.requested_by)

    # -- the task -----------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                async with self.work.unit():
                    await self._prepare()
                break
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                self.watch.failed(exc, "recovery")
                await asyncio.sleep(self.watch.backoff_s())
        if self.watch.down:
            await self.watch.recovered()
        self.prepared.set()
        try:
            await self._finish()
        finally:
            self.took_s = time.monotonic() - self._started
            self.done.set()
        await self._report()

    async def _prepare(self) -> None:
        ex = self.executor
        await self._poll("before recovery")
        killed = self.states.state == KILLED
        unsent: list[OrderRow] = []
        to_cancel: list[OrderRow] = []
        async with self.db.read() as s:
            open_ids = {p.id for p in await accounting.open_positions(s)}
        for row in await ex.open_orders():
            try:
                found = await ex.lookup(row)
            except ExchangeError as exc:
                self._note(f"{row.client_order_id} ({row.purpose} {row.pair}): venue lookup failed ({exc}); "
                           "retried later", alert=False)
                continue
            if found is not None:
                await ex.adopt(row, found)
                self._note(f"{row.client_order_id} ({row.purpose} {row.pair}): found at the venue "
                           f"({found.status.value})", alert=False)
                if not found.status.is_final and (
                        (killed and row.purpose != OrderPurpose.KILL)
                        or (row.purpose in EXIT_PURPOSES | {OrderPurpose.KILL} and row.position_id not in open_ids)):
                    to_cancel.append(row)
            elif row.status == OrderStatus.NEW:
                unsent.append(row)
            else:
                await ex.expire(row, "unknown to the venue after restart")
                self._note(f"{row.client_order_id} ({row.purpose} {row.pair}): unknown to the venue; marked expired")
        if to_cancel:
            done = await ex.cancel_many(to_cancel)
            for row, ok in zip(to_cancel, done, strict=True):
                why = "trading is killed" if killed else f"position #{row.position_id} is no longer open"
                self._note(f"{row.client_order_id} ({row.purpose} {row.pair}): open at the venue, "
                           f"{'cancelled' if ok else 'cancel NOT confirmed'}: {why}")
        if unsent:
            ids = {r.client_order_id for r in unsent}
            # no pair counts as priced yet: what keeps its reason waits for its pair's first price
            # (on_price), what lost it is voided now
            for line in await ex.resend_unsent(state=self.states.state, priced=PricedPairs(), only=ids):
                self._note(line)
            left = {r.client_order_id: r.pair for r in await ex.open_orders()
                    if r.client_order_id in ids and r.status == OrderStatus.NEW}
            if not killed:  # a kill's own unsent orders are sent by the kill's completion
                self._waiting = left
        await self._sweep_orphans()
        await self._poll("after recovery")
        # after the fills: a fill not yet applied is no difference
        await record_differences(self.db, self.venue, self.events, now=datetime.now(UTC), markets=self.markets)
        await self.books.restore_marks()
        if not self._waiting:
            self._settled.set()

    async def _poll(self, when: str) -> None:
        try:
            await self.executor.poll_fills()
        except ExchangeError as exc:
            self._note(f"fills could not be read {when} ({exc})", alert=False)

    async def _sweep_orphans(self) -> None:
        """Void ``pending`` positions that no live entry order will ever open (written before their
        order by older versions, or their order voided elsewhere)."""
        async with self.executor.writing() as s:
            pending = (await s.exec(select(PositionRow).where(PositionRow.status == PositionStatus.PENDING))).all()
            if not pending:
                return
            ids = [p.id for p in pending]
            live = set((await s.exec(select(OrderRow.position_id).where(
                col(OrderRow.position_id).in_(ids), col(OrderRow.status).in_(OPEN_STATES)))).all())
            for p in pending:
                if p.id not in live:
                    p.status = PositionStatus.VOID
                    p.exit_reason = "no entry order (interrupted before it was written)"
                    s.add(p)
                    self._note(f"position #{p.id} ({p.pair}) was pending without an entry order: voided")

    async def _finish(self) -> None:
        deadline = self._started + self.wait_s
        if self.states.state == KILLED:
            await self._finish_kill(deadline)
        await self._closes(deadline)
        await self._orders_interrupted()
        if self._waiting:
            try:
                await asyncio.wait_for(self._settled.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pairs = sorted(set(self._waiting.values()))
                self._note(f"{len(self._waiting)} unsent order(s) still without a price after {self.wait_s:.0f}s "
                           f"({', '.join(pairs)}): retried by the protection loop while their reason holds")
                self._waiting.clear()

    async def _finish_kill(self, deadline: float) -> None:
        async with self.db.read() as s:
            positions = await accounting.open_positions(s)
        if positions or self.kills:
            await self._wait_prices({p.pair for p in positions}, deadline)
            by = self.kills[-1].requested_by if self.kills else self.states.current.changed_by or "recovery"
            result = await self.kill_switch.finish(by, time.perf_counter())
            self._note(f"kill completed: {result.message}")
            outcome = "trading killed; " + result.message
            for k in self.kills:
                await self._record(k, outcome, "completed after restart: " + result.message)

    async def _closes(self, deadline: float) -> None:
        """Confirmed ``/close``, ``/closeall`` and ``/cancel`` a crash interrupted: carried out while fresh.
        A ``/cancel`` is the one the requester confirmed (its order, or every order for ``all``); its
        pair limit was applied when the prompt was asked, and the order id does not change."""
        for req in await self._unfinished(("close", "closeall", "cancel")):
            age = (datetime.now(UTC) - req.confirmed_at).total_seconds()
            intent: Intent
            first = req.tokens[0].strip() if req.tokens else ""
            if req.command == "close":
                pair = first.upper().replace("-", "/").replace("_", "/")
                intent = ClosePosition(requested_by=req.requested_by, pair=pair)
                pairs = {pair} & set(self.pairs.active)
            elif req.command == "cancel":
                everything = first.lower() == "all"
                intent = CancelOrders(requested_by=req.requested_by, order_id="" if everything else first,
                                      everything=everything)
                pairs = set()
            else:
                intent = CloseAll(requested_by=req.requested_by)
                pairs = set(self.pairs.active)
            if self.states.state == KILLED:
                outcome = ("not executed: trading is killed, the kill " +
                           ("cancelled every order" if req.command == "cancel" else "flattened every position"))
            elif age > self.stale_command_s:
                outcome = (f"NOT executed: confirmed {age:.0f}s before the restart finished it, more than "
                           f"chat.stale_command_s ({self.stale_command_s:.0f}s); send it again if still wanted")
            else:
                await self._wait_prices(pairs, deadline)
                result = await self.control.submit(intent)
                outcome = ("completed: " if result.ok else "refused: ") + result.message
            self._note(f"/{req.command} by {req.requested_by}: {outcome}")
            await self._record(req, outcome)

    async def _orders_interrupted(self) -> None:
        """Confirmed ``/buy`` and ``/sell`` a crash interrupted: recorded and alerted, never run again. Its
        order, if the row was written, was re-sent with its own client order id in step 4 (a venue that had
        it keeps one); /orders and /positions show what happened."""
        for req in await self._unfinished(("buy", "sell")):
            outcome = ("not run again after the restart (prices moved since it was confirmed); /orders and "
                       "/positions show whether its order reached the venue")
            self._note(f"/{req.command} by {req.requested_by}: {outcome}")
            await self._record(req, outcome)

    async def _record(self, req: ConfirmedRequest, outcome: str, result: str | None = None) -> None:
        """Mark ``req`` executed (with ``result``, else ``outcome``) and store its ``interrupted_command``
        alert in one transaction: a crash between the two would lose the alert for a command it marked."""
        async with self.db.session() as s:
            await s.exec(confirmed.executed(req.nonce, result or outcome))
            self.events.stage(s, InterruptedCommand(command=req.command, requested_by=req.requested_by,
                                                    confirmed_at=req.confirmed_at, outcome=outcome))

    async def _unfinished(self, commands: tuple[str, ...]) -> list[ConfirmedRequest]:
        """Confirmed, unexecuted ``commands`` from before this start (one confirmed since runs in this process)."""
        return [r for r in await confirmed.unfinished(self.db, commands) if r.confirmed_at <= self._began_at]

    # -- prices ------------------------------------------------------------------------------

    def _event(self, pair: str) -> asyncio.Event:
        ev = self._priced.get(pair)
        if ev is None:
            ev = self._priced[pair] = asyncio.Event()
            if self.md.price(pair) is not None:
                ev.set()
        return ev

    async def _wait_prices(self, pairs: set[str], deadline: float) -> None:
        waits = [self._event(p).wait() for p in pairs]
        if not waits:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*waits), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            self._note(f"no price for {', '.join(sorted(p for p in pairs if not self._event(p).is_set()))} "
                       f"within {self.wait_s:.0f}s; went on without it")

    async def on_price(self, pair: str) -> None:
        """The engine saw a price for ``pair`` (a candle or ticker, after the venue saw it too):
        unsent orders of that pair that still have their reason are sent now."""
        self._event(pair).set()
        if not self.prepared.is_set() or pair not in self._waiting.values():
            return
        ids = {cid for cid, p in self._waiting.items() if p == pair}
        for line in await self.executor.resend_unsent(state=self.states.state, priced=PricedPairs(frozenset({pair})),
                                                      only=ids):
            self._note(line, alert="sent with its original id" not in line)
        still = {r.client_order_id for r in await self.executor.open_orders() if r.status == OrderStatus.NEW}
        for cid in ids - still:
            self._waiting.pop(cid, None)
        if not self._waiting:
            self._settled.set()

    # -- report ------------------------------------------------------------------------------

    def _note(self, line: str, *, alert: bool = True) -> None:
        log.info("recovery: %s", line)
        self.notes.append(line)
        self._alert = self._alert or alert

    async def _report(self) -> None:
        took = self.took_s or 0.0
        log.info("recovery finished in %.2fs: %s", took, "; ".join(self.notes) if self.notes else "nothing to do")
        if self._alert:
            await self.events.announce(self.db, RecoveryReport(took_s=took, lines=tuple(self.notes[:30])))
