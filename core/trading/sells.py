"""The one guard every sell of a position goes through before it is written.

Invariant: for each position, what its live sell orders (``new``, ``submitted``, ``partially_filled``)
still have to sell never exceeds what the position holds. Fills keep it (a fill moves quantity from the
order's remainder to the position's sold part in one transaction), so only writing a sell can break it,
and every path that writes one calls :func:`write_sells`: the stop, trailing stop, take-profit and
strategy exits, /close, /closeall and ``/pairs remove X close`` (:meth:`Exits.exit_position
<core.trading.exits.Exits.exit_position>`), /sell (:mod:`core.trading.manual`) and the kill
(:mod:`core.trading.kill`).

The check and the write are one transaction that first locks the position's row (``SELECT ... FOR
UPDATE`` on PostgreSQL; on SQLite every write transaction already holds the database's write lock from
its ``BEGIN IMMEDIATE``). Two writers that race for one position -- a /sell and a stop on the engine's
loop, or two processes during a leadership hand-over, which the lease only bounds in time -- therefore
take turns, and the second sees the first's order. The database, not memory, is what is checked, so the
guard also holds across restarts.

Not done: orders the venue holds that our database does not know (placed by hand on the venue's site)
are not counted; reconciliation reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam
from sqlmodel import col, select

from core.trading.executor import Executor, new_client_order_id
from core.trading.values import OPEN_STATES, OrderPurpose, PositionStatus
from exchanges.base import Market, OrderStatus, OrderType, Side
from persistence.models import OrderRow, PositionRow

ZERO = Decimal(0)
# built once: every exit runs them
_LOCKED_POSITIONS = (select(PositionRow).where(col(PositionRow.id).in_(bindparam("ids", expanding=True)))
                     .order_by(col(PositionRow.id)).with_for_update().execution_options(populate_existing=True))
_OPEN_SELLS = select(OrderRow).where(col(OrderRow.position_id).in_(bindparam("ids", expanding=True)),
                                     OrderRow.side == Side.SELL.value, col(OrderRow.status).in_(OPEN_STATES))


@dataclass(frozen=True, slots=True)
class SellAsk:
    """One sell to write for a position.

    ``qty`` None sells all the position holds (rounded down to the venue's step). ``beside`` (the kill)
    sells what other live sells leave free instead of refusing: the kill cancels those orders in the
    same round and sells the rest in the next. ``mark_exit`` records ``purpose`` as the position's
    exit reason (a sell that may close it)."""

    position_id: int
    purpose: OrderPurpose
    reason: str
    by: str
    qty: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    beside: bool = False
    mark_exit: bool = True


@dataclass(frozen=True, slots=True)
class NoSell:
    """Why nothing was written: ``busy`` when another live order is already selling the position."""

    why: str
    busy: bool = False


def _remaining(o: OrderRow) -> Decimal:
    return max(o.qty - o.filled_qty, ZERO)


async def write_sells(executor: Executor, asks: Sequence[SellAsk],
                      markets: Mapping[str, Market]) -> list[OrderRow | NoSell]:
    """Check and write the sells (status ``new``; nothing is sent) in one transaction; one answer per ask."""
    if not asks:
        return []
    ids = sorted({a.position_id for a in asks})
    now = executor.clock.now()
    answers: list[OrderRow | NoSell] = []
    async with executor.writing() as s:
        # locked in id order, so two writers that lock several positions (kills) cannot deadlock
        positions = {p.id: p for p in (await s.exec(_LOCKED_POSITIONS, params={"ids": ids})).all()}
        reserved: dict[int, Decimal] = {}
        for o in (await s.exec(_OPEN_SELLS, params={"ids": ids})).all():
            assert o.position_id is not None
            reserved[o.position_id] = reserved.get(o.position_id, ZERO) + _remaining(o)
        for ask in asks:
            pos = positions.get(ask.position_id)
            if pos is None or pos.status != PositionStatus.OPEN or pos.qty <= 0:
                answers.append(NoSell(f"position #{ask.position_id} is not open"))
                continue
            taken = reserved.get(ask.position_id, ZERO)
            if taken > 0 and not ask.beside:
                answers.append(NoSell(f"an order is already selling position #{ask.position_id}", busy=True))
                continue
            free = pos.qty - taken
            market = markets.get(pos.pair)
            qty = ask.qty if ask.qty is not None else (market.round_qty(free) if market else free)
            if qty > free:
                answers.append(NoSell(f"position #{ask.position_id} holds {free} free to sell, not {qty}"))
                continue
            if qty <= 0 or (taken > 0 and market is not None and qty < market.min_qty):  # the venue would refuse it
                answers.append(NoSell(f"nothing of position #{ask.position_id} is free to sell", busy=taken > 0))
                continue
            if ask.mark_exit:
                pos.exit_reason = ask.purpose
                s.add(pos)
            row = OrderRow(client_order_id=new_client_order_id(), venue=executor.venue.name, pair=pos.pair,
                           side=Side.SELL.value, order_type=ask.order_type.value, qty=qty,
                           limit_price=ask.limit_price, status=OrderStatus.NEW, purpose=ask.purpose,
                           position_id=pos.id, reason=ask.reason[:500], requested_by=ask.by[:200],
                           created_at=now, updated_at=now)
            s.add(row)
            reserved[ask.position_id] = taken + qty
            answers.append(row)
        await s.flush()
    return answers
