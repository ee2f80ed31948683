"""The executor: an order state machine with write-ahead client order ids.

``new -> submitted -> partially_filled -> filled | cancelled | rejected | expired``.
An order row, with its client order id and intent, is committed *before* the venue hears of it.
Venues treat the client order id as idempotent, so after a crash between "written" and "sent" the
engine's recovery (:mod:`core.trading.recovery`) asks the venue about every open order and either adopts
what it finds or sends the very same id again -- never a second order -- and only while the order's
reason still holds (:mod:`core.trading.order_reasons`); otherwise it is voided.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading import accounting
from core.trading.events import (
    Event,
    EventBus,
    ExitKind,
    OrderCancelled,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionOpened,
)
from core.trading.order_reasons import ENTRY_MAX_AGE_S, OrderVoided, judge_unsent
from core.trading.state import TradingStatus
from core.trading.values import (
    OPEN_STATES,
    VOIDING_STATES,
    OrderPurpose,
    PositionStatus,
    known_purpose,
    market_rules,
)
from exchanges.base import Exchange, Market, Order, OrderRequest, OrderStatus, OrderType, Side
from exchanges.clock import Clock
from exchanges.errors import ExchangeError, InvalidOrder, OrderNotFound, TemporaryError
from exchanges.retry import Backoff, Sleep
from persistence.db import Database
from persistence.models import FillRow, OrderRow, PositionRow, RuntimeValue
from persistence.upsert import table_of, upsert_rows

log = logging.getLogger("tradectl.executor")
FILL_CURSOR_KEY = "fills_cursor"
# the statements every order and every page of fills runs, built once (building one costs about as
# much as running it on a small database)
_ORDERS_BY_ID = select(OrderRow).where(col(OrderRow.id).in_(bindparam("ids", expanding=True)))
_ORDERS_BY_COID = select(OrderRow).where(col(OrderRow.client_order_id).in_(bindparam("coids", expanding=True)))
_KNOWN_FILLS = select(FillRow.fill_id).where(FillRow.venue == bindparam("venue"),
                                             col(FillRow.fill_id).in_(bindparam("fids", expanding=True)))
_POSITIONS_BY_ID = select(PositionRow).where(col(PositionRow.id).in_(bindparam("ids", expanding=True)))
__all__ = ["FILL_CURSOR_KEY", "OPEN_STATES", "Executor", "OrderSpec", "Priced", "PricedPairs",
           "new_client_order_id"]


@dataclass(frozen=True, slots=True)
class OrderSpec:
    pair: str
    side: Side
    qty: Decimal
    purpose: OrderPurpose
    position_id: int | None
    reason: str = ""
    requested_by: str = "engine"
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None


class OutcomeKind(StrEnum):
    """How sending or cancelling one order ended."""

    PLACED = "placed"  # the venue took the order
    REJECTED = "rejected"  # the venue refused it as invalid (never retried)
    FAILED = "failed"  # not known to have happened: a venue error, or every attempt failed
    FINAL = "final"  # a cancel the venue confirmed (or the order was already final there)
    GONE = "gone"  # a cancel of an order the venue never had


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: OutcomeKind
    attempts: int
    order: Order | None = None
    error: ExchangeError | None = None


class Priced(Protocol):
    """Whether a pair has a price yet: an unsent order of a pair without one waits for it
    (:meth:`Executor.resend_unsent`). :class:`~core.trading.market_data.MarketData` is one."""

    def priced(self, pair: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class PricedPairs:
    """Only ``pairs`` count as priced, whatever the market data says: recovery's "no pair yet" (none) and
    "the pair whose first price just came" (one)."""

    pairs: frozenset[str] = frozenset()

    def priced(self, pair: str) -> bool:
        return pair in self.pairs


def _copy(src: OrderRow, dst: OrderRow) -> None:
    if src is not dst:
        for name in OrderRow.model_fields:
            setattr(dst, name, getattr(src, name))


def new_client_order_id() -> str:
    """18 characters: fits Kraken's free-text ``cl_ord_id`` and every other venue we know."""
    return "tc" + secrets.token_hex(8)


class Executor:
    def __init__(
        self,
        db: Database,
        exchange: Exchange,
        events: EventBus,
        clock: Clock,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        on_exchange_error: Callable[[ExchangeError], None] | None = None,
        markets: dict[str, Market] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """``on_exchange_error`` hears of every venue error on the way (the engine's error-burst breaker).
        ``markets`` is the venue's markets by pair, whose step and tick the events carry; the engine
        holds this very mapping and fills it when it starts (a new one when not given).

        A send or a cancel is tried ``max_attempts`` times. After a temporary venue error it waits
        ``backoff_s``, doubling with each such error up to 5 s for a send and 2 s for a cancel (or as
        long as the venue asked, when it said), without jitter; ``sleep`` does the waiting."""
        self.db = db
        self.markets: dict[str, Market] = markets if markets is not None else {}
        self.venue = exchange
        self.events = events
        self.clock = clock
        self.max_attempts = max_attempts
        self.send_backoff = Backoff(initial_s=backoff_s, max_s=5.0, jitter=0.0)
        self.cancel_backoff = Backoff(initial_s=backoff_s, max_s=2.0, jitter=0.0)
        self._sleep = sleep
        self._on_error = on_exchange_error
        self._fill_lock = asyncio.Lock()
        self._inflight: set[str] = set()
        self._cursor: str | None = None
        self._cursor_loaded = False
        self.version = 0  # bumped whenever orders or positions may have changed (for caches)
        self._closed: list[PositionRow] = []  # closed by fills since the last drain_closed()
        # built once: stored with every page of fills
        self._store_cursor = upsert_rows(db.dialect, table_of(RuntimeValue), ("key", "value", "updated_at"), ("key",))

    # -- placing -------------------------------------------------------------------------

    def _error(self, exc: ExchangeError) -> None:
        if self._on_error is not None:
            self._on_error(exc)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction on orders or positions. Every such write goes through here: ``version``
        moves once it has committed (or failed), so a cache filled from a read that overlapped it is
        never taken as current."""
        try:
            async with self.db.session() as s:
                yield s
        finally:
            self.version += 1

    async def prepare(self, specs: Sequence[OrderSpec]) -> list[OrderRow]:
        """Write the orders (status ``new``) in one transaction; nothing is sent yet."""
        now = self.clock.now()
        rows = [
            OrderRow(client_order_id=new_client_order_id(), venue=self.venue.name, pair=s.pair, side=s.side.value,
                     order_type=s.order_type.value, qty=s.qty, limit_price=s.limit_price, status=OrderStatus.NEW,
                     purpose=s.purpose, position_id=s.position_id, reason=s.reason[:500],
                     requested_by=s.requested_by[:200], created_at=now, updated_at=now)
            for s in specs
        ]
        async with self.writing() as s:
            for row in rows:
                s.add(row)
            await s.flush()
        return rows

    async def prepare_entry(self, position: PositionRow, spec: OrderSpec) -> tuple[int, OrderRow]:
        """Write a ``pending`` position and its entry order (status ``new``) in one transaction, so
        a crash can never leave a position without the order it waits for."""
        now = self.clock.now()
        async with self.writing() as s:
            s.add(position)
            await s.flush()
            assert position.id is not None
            pos_id = position.id
            row = OrderRow(client_order_id=new_client_order_id(), venue=self.venue.name, pair=spec.pair,
                           side=spec.side.value, order_type=spec.order_type.value, qty=spec.qty,
                           limit_price=spec.limit_price, status=OrderStatus.NEW, purpose=spec.purpose,
                           position_id=pos_id,
                           reason=spec.reason[:500], requested_by=spec.requested_by[:200], created_at=now,
                           updated_at=now)
            s.add(row)
            await s.flush()
        return pos_id, row

    async def place(self, spec: OrderSpec) -> OrderRow:
        (row,) = await self.prepare([spec])
        return await self.send(row)

    async def send(self, row: OrderRow) -> OrderRow:
        """Send a prepared order, retrying temporary failures with the same client order id."""
        await self.send_many([row])
        return row

    async def send_many(self, rows: Sequence[OrderRow]) -> bool:
        """Send prepared orders concurrently (one round trip of latency, not one per order) and
        record every outcome in a single transaction. True when the venue accepted every one."""
        rows = [r for r in rows if r.client_order_id not in self._inflight]
        if not rows:
            return True
        self._inflight.update(r.client_order_id for r in rows)
        try:
            outcomes = await asyncio.gather(*(self._place_with_retry(r) for r in rows))
            await self._record_sends(list(zip(rows, outcomes, strict=True)))
        finally:
            self._inflight.difference_update(r.client_order_id for r in rows)
        return all(o.kind is OutcomeKind.PLACED for o in outcomes)

    async def _place_with_retry(self, row: OrderRow) -> _Outcome:
        req = OrderRequest(client_order_id=row.client_order_id, pair=row.pair, side=Side(row.side),
                           type=OrderType(row.order_type), qty=row.qty, limit_price=row.limit_price)
        last: ExchangeError | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                return _Outcome(OutcomeKind.PLACED, attempt, order=await self.venue.place_order(req))
            except InvalidOrder as exc:
                return _Outcome(OutcomeKind.REJECTED, attempt, error=exc)
            except TemporaryError as exc:
                self._error(exc)
                last = exc
                log.warning("place %s attempt %d failed: %s", row.client_order_id, attempt, exc)
                await self._sleep(exc.retry_after or self.send_backoff.delay(attempt - 1))
            except ExchangeError as exc:
                self._error(exc)
                log.error("place %s failed: %s", row.client_order_id, exc)
                return _Outcome(OutcomeKind.FAILED, attempt, error=exc)
        log.error("order %s still unsent after %d attempts; it will be retried", row.client_order_id, self.max_attempts)
        return _Outcome(OutcomeKind.FAILED, self.max_attempts, error=last)

    async def _record_sends(self, results: list[tuple[OrderRow, _Outcome]]) -> None:
        now = self.clock.now()
        async with self.writing() as s:
            ids = [row.id for row, _ in results]
            loaded = {o.id: o for o in (await s.exec(_ORDERS_BY_ID, params={"ids": ids})).all()}
            for row, out in results:
                fresh = loaded[row.id]
                fresh.attempts = out.attempts
                fresh.updated_at = now
                if out.kind is OutcomeKind.PLACED and out.order is not None:
                    self._apply_venue_view(fresh, out.order, now)
                    if fresh.status in VOIDING_STATES:
                        await self._void_in(s, fresh)
                    step, tick = market_rules(self.markets, row.pair)
                    # a row sent here was written from an OrderSpec, or passed judge_unsent (which voids an
                    # unknown purpose): its purpose is one of ours
                    self.events.stage(s, OrderPlaced(pair=row.pair, side=Side(row.side), qty=row.qty,
                                                     client_order_id=row.client_order_id,
                                                     purpose=OrderPurpose(row.purpose), qty_step=step,
                                                     price_tick=tick))
                elif out.kind is OutcomeKind.REJECTED:
                    fresh.status = OrderStatus.REJECTED
                    fresh.last_error = str(out.error)[:500]
                    await self._void_in(s, fresh)
                    step, tick = market_rules(self.markets, row.pair)
                    self.events.stage(s, OrderRejected(pair=row.pair, side=Side(row.side), qty=row.qty,
                                                       reason=str(out.error), qty_step=step, price_tick=tick))
                else:
                    fresh.last_error = str(out.error)[:500]
                s.add(fresh)
                _copy(fresh, row)

    def _apply_venue_view(self, row: OrderRow, order: Order, now: datetime) -> None:
        row.venue_order_id = order.venue_order_id
        if row.status == OrderStatus.NEW:
            row.status = OrderStatus.SUBMITTED
            row.submitted_at = now
        if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
            row.status = order.status
            row.last_error = order.reject_reason[:500]

    async def _adopt(self, row: OrderRow, order: Order) -> None:
        now = self.clock.now()
        async with self.writing() as s:
            fresh = await s.get(OrderRow, row.id)
            assert fresh is not None
            self._apply_venue_view(fresh, order, now)
            fresh.updated_at = now
            if fresh.status in VOIDING_STATES:
                await self._void_in(s, fresh)
            s.add(fresh)
            _copy(fresh, row)

    async def _set(self, row: OrderRow, **fields: object) -> None:
        async with self.writing() as s:
            fresh = await s.get(OrderRow, row.id)
            assert fresh is not None
            for k, v in fields.items():
                setattr(fresh, k, v)
            fresh.updated_at = self.clock.now()
            if fresh.status in VOIDING_STATES:
                await self._void_in(s, fresh)
            s.add(fresh)
            _copy(fresh, row)

    async def abandon(self, row: OrderRow, reason: str) -> None:
        """Give up on an order that was written but never sent (it becomes ``cancelled``)."""
        await self._set(row, status=OrderStatus.CANCELLED, last_error=reason[:500])

    async def _void_in(self, s: AsyncSession, row: OrderRow) -> None:
        """An entry that ended without any fill leaves no position behind."""
        if row.position_id is None or row.purpose != OrderPurpose.ENTRY:
            return
        pos = await s.get(PositionRow, row.position_id)
        if pos is not None and pos.status == PositionStatus.PENDING:
            pos.status = PositionStatus.VOID
            s.add(pos)

    # -- cancelling ----------------------------------------------------------------------

    async def cancel(self, row: OrderRow) -> bool:
        """Cancel until the venue confirms (or says the order is already final). True when final."""
        return (await self.cancel_many([row]))[0]

    async def cancel_many(self, rows: Sequence[OrderRow]) -> list[bool]:
        """Cancel concurrently; record every confirmed outcome in one transaction."""
        outcomes = await asyncio.gather(*(self._cancel_with_retry(r) for r in rows))
        now = self.clock.now()
        async with self.writing() as s:
            stmt = select(OrderRow).where(col(OrderRow.id).in_([r.id for r in rows]))
            loaded = {o.id: o for o in (await s.exec(stmt)).all()}
            for row, out in zip(rows, outcomes, strict=True):
                if out.kind is OutcomeKind.FAILED:
                    continue
                fresh = loaded[row.id]
                if out.kind is OutcomeKind.GONE:
                    fresh.status, fresh.last_error = OrderStatus.CANCELLED, "not found at venue"
                elif out.order is not None and out.order.status != OrderStatus.FILLED:
                    fresh.status = out.order.status
                    self.events.stage(s, OrderCancelled(pair=row.pair, client_order_id=row.client_order_id))
                fresh.updated_at = now
                if fresh.status in VOIDING_STATES:
                    await self._void_in(s, fresh)
                s.add(fresh)
                _copy(fresh, row)
        return [out.kind is not OutcomeKind.FAILED for out in outcomes]

    async def _cancel_with_retry(self, row: OrderRow) -> _Outcome:
        temporary = 0  # the wait grows with each temporary error only, not with each unconfirmed answer
        for attempt in range(1, self.max_attempts + 1):
            try:
                order = await self.venue.cancel_order(row.pair, row.client_order_id)
            except OrderNotFound:
                try:
                    found = await self._lookup(row)
                except ExchangeError as exc:
                    self._error(exc)
                    await self._sleep(self.cancel_backoff.delay(temporary))
                    continue
                if found is None:
                    return _Outcome(OutcomeKind.GONE, attempt)
                order = found
            except TemporaryError as exc:
                self._error(exc)
                await self._sleep(exc.retry_after or self.cancel_backoff.delay(temporary))
                temporary += 1
                continue
            except ExchangeError as exc:
                self._error(exc)
                log.error("cancel %s failed: %s", row.client_order_id, exc)
                return _Outcome(OutcomeKind.FAILED, attempt, error=exc)
            if order.status.is_final:
                return _Outcome(OutcomeKind.FINAL, attempt, order=order)
            await self._sleep(self.cancel_backoff.delay(temporary))  # the venue has not confirmed yet: ask again
        return _Outcome(OutcomeKind.FAILED, self.max_attempts)

    async def _lookup(self, row: OrderRow) -> Order | None:
        try:
            return await self.venue.fetch_order(row.pair, row.client_order_id)
        except OrderNotFound:
            return None

    # -- fills ---------------------------------------------------------------------------

    async def poll_fills(self) -> list[Event]:
        """Pull new fills from the venue and apply them; returns the events published."""
        async with self._fill_lock:
            if not self._cursor_loaded:  # only this executor (the leader's) writes it afterwards
                async with self.db.read() as s:
                    cur = await s.get(RuntimeValue, FILL_CURSOR_KEY)
                self._cursor, self._cursor_loaded = (cur.value if cur else None), True
            cursor = self._cursor
            page = await self.venue.fills_since(cursor)
            if not page.fills and page.cursor == cursor:
                return []
            staged: list[Event] = []
            closed: list[PositionRow] = []
            async with self.writing() as s:
                # bulk-load what the page touches: one query each, not one per fill
                coids = {f.client_order_id for f in page.fills}
                fids = [f.fill_id for f in page.fills]
                orders = {o.client_order_id: o for o in (await s.exec(
                    _ORDERS_BY_COID, params={"coids": list(coids)})).all()} if coids else {}
                known = set((await s.exec(_KNOWN_FILLS, params={"venue": self.venue.name, "fids": fids})).all()) \
                    if fids else set()
                pos_ids = {o.position_id for o in orders.values() if o.position_id is not None}
                # held in a local: the session's identity map keeps unmodified rows only weakly, so a
                # discarded result would be collected and every ``get`` below would query again
                _held = list((await s.exec(_POSITIONS_BY_ID, params={"ids": list(pos_ids)})).all()) if pos_ids else []
                for fill in page.fills:
                    order = orders.get(fill.client_order_id)
                    if order is None:
                        log.warning("fill %s for unknown order %s", fill.fill_id, fill.client_order_id)
                        continue
                    effect = await accounting.apply_fill(s, self.venue.name, fill, order, known)
                    if effect is None:
                        continue
                    if order.filled_qty >= order.qty:
                        order.status = OrderStatus.FILLED
                    elif order.status in (OrderStatus.NEW, OrderStatus.SUBMITTED):
                        order.status = OrderStatus.PARTIALLY_FILLED
                    s.add(order)
                    step, tick = market_rules(self.markets, fill.pair)
                    staged.append(OrderFilled(pair=fill.pair, side=fill.side, qty=fill.qty, price=fill.price,
                                              fee=fill.fee, fee_currency=fill.fee_currency,
                                              partial=order.status != OrderStatus.FILLED,
                                              client_order_id=order.client_order_id, qty_step=step, price_tick=tick))
                    pos = effect.position
                    if effect.opened:
                        staged.append(PositionOpened(pair=pos.pair, qty=pos.qty, price=fill.price,
                                                     fee=effect.fee_quote, stop=pos.stop_price, reason=pos.reason,
                                                     qty_step=step, price_tick=tick))
                    if effect.closed:
                        closed.append(pos)
                        staged.append(_closed_event(pos, order, fill.price, self.markets))
                if page.cursor is not None:
                    await (await s.connection()).execute(self._store_cursor, {
                        "key": FILL_CURSOR_KEY, "value": page.cursor, "updated_at": self.clock.now()})
                for ev in staged:
                    self.events.stage(s, ev)
            self._cursor = page.cursor
            self._closed.extend(closed)
            return staged

    def drain_closed(self) -> list[PositionRow]:
        """The positions fills closed since the last call, oldest first (the engine's risk manager
        learns of losing exits this way before it judges the next entry)."""
        closed, self._closed = self._closed, []
        return closed

    # -- recovery ------------------------------------------------------------------------

    async def open_orders(self) -> list[OrderRow]:
        async with self.db.read() as s:
            stmt = select(OrderRow).where(col(OrderRow.status).in_(OPEN_STATES)).order_by(col(OrderRow.id))
            return list((await s.exec(stmt)).all())

    async def resend_unsent(self, *, state: TradingStatus, priced: Priced,
                            entry_max_age_s: float = ENTRY_MAX_AGE_S, only: Collection[str] | None = None) -> list[str]:
        """Send orders still ``new`` (written, never confirmed sent) whose reason still holds
        (:mod:`core.trading.order_reasons`); void the others, after making sure the venue never got them.
        An order whose pair has no price yet (``priced.priced(pair)`` False) waits, unsent and not voided.
        ``only`` limits it to those client order ids. Returns one line per order handled."""
        notes: list[str] = []
        rows = [r for r in await self.open_orders()
                if r.status == OrderStatus.NEW and r.client_order_id not in self._inflight
                and (only is None or r.client_order_id in only)]
        if not rows:
            return notes
        async with self.db.read() as s:
            verdicts = await judge_unsent(s, rows, state=state, now=self.clock.now(), entry_max_age_s=entry_max_age_s)
        for row, verdict in verdicts:
            if verdict.send:
                if not priced.priced(row.pair):
                    continue
                await self.send(row)
                notes.append(f"{row.client_order_id} ({row.purpose} {row.pair}): "
                             + (f"sent with its original id ({row.status})" if row.status != OrderStatus.NEW
                                else "still unsent, will retry"))
            else:
                notes.append(await self.void(row, verdict.why))
        return notes

    async def void(self, row: OrderRow, why: str) -> str:
        """Drop an order whose reason no longer holds. The venue is asked first: an order it has
        after all is adopted, and cancelled if still open. Returns the line for the log."""
        found = await self._lookup(row)
        if found is not None:
            await self._adopt(row, found)
            if found.status.is_final:
                return f"{row.client_order_id} ({row.purpose} {row.pair}): found at the venue ({found.status.value})"
            done = await self.cancel(row)
            return (f"{row.client_order_id} ({row.purpose} {row.pair}): found open at the venue and "
                    f"{'cancelled' if done else 'NOT yet cancelled'}: {why}")
        async with self.writing() as s:
            fresh = await s.get(OrderRow, row.id)
            assert fresh is not None
            fresh.status, fresh.last_error = OrderStatus.CANCELLED, f"voided: {why}"[:500]
            fresh.updated_at = self.clock.now()
            s.add(fresh)
            await self._void_in(s, fresh)
            if fresh.purpose != OrderPurpose.ENTRY and fresh.position_id is not None:
                pos = await s.get(PositionRow, fresh.position_id)
                if pos is not None and pos.status == PositionStatus.OPEN and pos.exit_reason == fresh.purpose:
                    pos.exit_reason = ""  # the exit it named never happened
                    s.add(pos)
            step, tick = market_rules(self.markets, row.pair)
            self.events.stage(s, OrderVoided(pair=row.pair, side=Side(row.side), qty=row.qty,
                                             purpose=known_purpose(row.purpose),
                                             client_order_id=row.client_order_id, why=why, qty_step=step,
                                             price_tick=tick))
            _copy(fresh, row)
        log.warning("order %s (%s %s) voided, never sent: %s", row.client_order_id, row.purpose, row.pair, why)
        return f"{row.client_order_id} ({row.purpose} {row.pair}): voided, never sent: {why}"

    async def expire(self, row: OrderRow, why: str) -> None:
        """An order we counted as sent that the venue does not know: it is over (``expired``)."""
        await self._set(row, status=OrderStatus.EXPIRED, last_error=why[:500])

    async def lookup(self, row: OrderRow) -> Order | None:
        """The venue's view of an order, or None if it never got it."""
        return await self._lookup(row)

    async def adopt(self, row: OrderRow, order: Order) -> None:
        """Take the venue's view of an order into our row."""
        await self._adopt(row, order)


def _closed_event(pos: PositionRow, order: OrderRow, fill_price: Decimal,
                  markets: Mapping[str, Market]) -> PositionClosed:
    """The event for a position whose last exit fill just arrived: the exit kind comes from the
    purpose of the order that closed it (its ``reason`` text is detail, never parsed)."""
    exit_kind = ExitKind.of_purpose(known_purpose(order.purpose))
    level = None
    if exit_kind in (ExitKind.STOP, ExitKind.TRAILING):
        level = pos.stop_price
    elif exit_kind is ExitKind.TAKE_PROFIT:
        level = pos.take_profit
    step, tick = market_rules(markets, pos.pair)
    return PositionClosed(pair=pos.pair, qty=pos.exit_qty, entry_price=accounting.entry_price(pos),
                          exit_price=accounting.exit_price(pos) or fill_price, fees=pos.entry_fees + pos.exit_fees,
                          pnl=pos.realized_pnl.quantize(accounting.Q), pnl_pct=accounting.pnl_pct(pos),
                          reason=order.reason or pos.exit_reason, exit_kind=exit_kind,
                          by=order.requested_by if exit_kind in (ExitKind.MANUAL, ExitKind.KILL) else "", level=level,
                          qty_step=step, price_tick=tick)
