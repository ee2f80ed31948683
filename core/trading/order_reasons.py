"""Why an order exists, and whether that reason still holds when it is about to be (re-)sent.

An order row is written before the venue hears of it, so a crash, a refused send or a restart can
leave it ``new`` for a long time. Sending it later is right only while the reason it was written
for still holds; otherwise it must be voided, with a line saying why:

- an **entry** needs trading to be running (never while paused or killed), its position still
  ``pending`` and the order young enough (entering minutes late at another price is not what the
  strategy asked for);
- an **exit** (strategy exit, stop, take-profit, trailing stop, /close) needs its position still
  open, no other order already closing it, not more than the position holds, and trading not
  killed (the kill flattens with its own orders);
- a **kill** order needs trading killed and its position still open, with no other kill order
  already closing it.

:func:`judge` is pure; :func:`judge_unsent` loads what it needs in one read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading.events import PairEvent
from core.trading.state import KILLED, RUNNING, TradingStatus
from core.trading.values import EXIT_PURPOSES, OPEN_STATES, OrderPurpose, PositionStatus
from exchanges.base import Side
from persistence.models import OrderRow, PositionRow

__all__ = ["ENTRY_MAX_AGE_S", "EXIT_PURPOSES", "OrderVoided", "Verdict", "judge", "judge_unsent"]
ENTRY_MAX_AGE_S = 60.0
KILL = OrderPurpose.KILL


@dataclass(frozen=True, slots=True)
class Verdict:
    send: bool
    why: str = ""  # why not, when ``send`` is False


SEND = Verdict(True)


@dataclass(frozen=True, kw_only=True)
class OrderVoided(PairEvent):
    """An order written but never sent was dropped because its reason no longer held. ``purpose`` is None
    when the order's row names a purpose this version does not know (``why`` then quotes it)."""

    kind: ClassVar[str] = "order_voided"
    severity: ClassVar[str] = "warning"
    side: Side
    qty: Decimal
    purpose: OrderPurpose | None
    client_order_id: str
    why: str

    def summary(self) -> str:
        return (f"order voided, never sent: {self.side} {self.qty} {self.pair} ({self.purpose or 'unknown purpose'}, "
                f"{self.client_order_id}): {self.why}")


def judge(order: OrderRow, position: PositionRow | None, *, state: TradingStatus, closing: dict[int, tuple[str, str]],
          now: datetime, entry_max_age_s: float = ENTRY_MAX_AGE_S) -> Verdict:
    """Whether an unsent order may be sent now. ``closing`` maps a position id to ``(client order
    id, purpose)`` of another live order already closing it. A kill order only yields to another
    kill order: the kill cancels every other order itself."""
    what = f"position #{order.position_id}"
    if order.purpose == OrderPurpose.ENTRY:
        if state != RUNNING:
            return Verdict(False, f"trading is {state}: no new entries")
        if position is None:
            return Verdict(False, "it belongs to no position")
        if position.status != PositionStatus.PENDING:
            return Verdict(False, f"{what} is {position.status}")
        age = (now - order.created_at).total_seconds()
        if age > entry_max_age_s:
            return Verdict(False, f"not sent within {entry_max_age_s:.0f}s (written {age:.0f}s ago)")
        return SEND
    if order.purpose not in EXIT_PURPOSES and order.purpose != KILL:
        return Verdict(False, f"unknown purpose {order.purpose!r}")
    if order.purpose == KILL and state != KILLED:
        return Verdict(False, f"trading is {state}, no longer killed")
    if order.purpose != KILL and state == KILLED:
        return Verdict(False, "trading is killed: the kill flattens with its own orders")
    if position is None:
        return Verdict(False, "it belongs to no position")
    if position.status != PositionStatus.OPEN or position.qty <= 0:
        return Verdict(False, f"{what} is {position.status}")
    other = closing.get(position.id) if position.id is not None else None
    if other is not None and other[0] != order.client_order_id and (order.purpose != KILL or other[1] == KILL):
        return Verdict(False, f"{what} is already being closed by {other[0]} ({other[1]})")
    if order.side == "sell" and order.qty > position.qty:
        return Verdict(False, f"{what} holds only {position.qty}, the order sells {order.qty}")
    return SEND


async def judge_unsent(session: AsyncSession, orders: Sequence[OrderRow], *, state: TradingStatus, now: datetime,
                       entry_max_age_s: float = ENTRY_MAX_AGE_S) -> list[tuple[OrderRow, Verdict]]:
    """Judge ``orders`` (oldest first) against the database as it is now. Of several unsent orders
    closing one position, only the oldest may go."""
    pos_ids = {o.position_id for o in orders if o.position_id is not None}
    positions: dict[int, PositionRow] = {}
    closing: dict[int, tuple[str, str]] = {}
    if pos_ids:
        rows = (await session.exec(select(PositionRow).where(col(PositionRow.id).in_(pos_ids)))).all()
        positions = {p.id: p for p in rows if p.id is not None}
        stmt = select(OrderRow).where(
            col(OrderRow.position_id).in_(pos_ids), col(OrderRow.status).in_(OPEN_STATES[1:]),
            col(OrderRow.purpose) != OrderPurpose.ENTRY).order_by(col(OrderRow.purpose) != KILL, col(OrderRow.id))
        live = (await session.exec(stmt)).all()
        for o in live:  # kill orders first: a kill order must see another kill order over an exit
            if o.position_id is not None:
                closing.setdefault(o.position_id, (o.client_order_id, o.purpose))
    out = []
    for order in sorted(orders, key=lambda o: o.id or 0):
        pos = positions.get(order.position_id) if order.position_id is not None else None
        verdict = judge(order, pos, state=state, closing=closing, now=now, entry_max_age_s=entry_max_age_s)
        if verdict.send and order.purpose != OrderPurpose.ENTRY and order.position_id is not None:
            if order.purpose == KILL or order.position_id not in closing:
                closing[order.position_id] = (order.client_order_id, order.purpose)
        out.append((order, verdict))
    return out
