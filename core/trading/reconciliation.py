"""Reconciliation: what the venue says we hold and have open, against what the database says.

Every difference becomes a :class:`~core.trading.events.ReconcileDifference` (a warning alert with the
details), never a silent fix: a human decides whether the books or the venue are wrong. One
implementation serves the engine's start-up check (balances only, see :mod:`core.trading.recovery`)
and the scheduled job in :mod:`core.ops.reconcile` (balances and orders).

Checked:

* each base currency the venue holds must cover the open positions in it (holding *more* is not a
  difference: the account may hold coins the bot does not manage, and fees in the base currency are
  already deducted from positions);
* with ``orders``: every order open in the database is open at the venue, and every order open at
  the venue is one the database knows as open.

Not checked: filled quantities of orders open on both sides, because fills reach the database
asynchronously and a lag of a few seconds is normal. Orders younger than ``order_grace`` are skipped
for the same reason: the executor writes an order (status ``new``) just before the venue hears of it.
An open order row whose side is neither buy nor sell (never written by the executor; a row edited by
hand) is refused with a ``ValueError`` naming it, as the chat's view of orders refuses it: the scheduled
job fails and says why instead of reporting a side that means nothing. The start-up check reads no orders.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading import accounting
from core.trading.events import EventBus, ReconcileDifference
from exchanges.base import Exchange, Market, Order, Side
from persistence.db import Database
from persistence.models import OrderRow

ZERO = Decimal(0)
log = logging.getLogger("tradectl.reconcile")


async def find_differences(
    db: Database,
    exchange: Exchange,
    *,
    now: datetime,
    order_grace: timedelta = timedelta(seconds=60),
    orders: bool = True,
    markets: Mapping[str, Market] | None = None,
) -> list[ReconcileDifference]:
    """Compare venue balances (and, with ``orders``, open orders) with open positions and open orders
    in the database. ``markets`` (read from the venue when not given) only round what alerts show."""
    balances = await exchange.balances()
    markets = markets if markets else await _markets(exchange)
    venue_orders: dict[str, Order] = {o.client_order_id: o for o in await exchange.open_orders()} if orders else {}
    async with db.read() as s:
        positions = await accounting.open_positions(s)
        our_open = [o for o in await accounting.orders_open(s) if o.venue == exchange.name] if orders else []
        # orders the venue has open that we no longer count as open: look up their status too
        ours_by_id = {o.client_order_id: o for o in our_open}
        others = await _orders_by_client_id(s, [cid for cid in venue_orders if cid not in ours_by_id])

    diffs: list[ReconcileDifference] = []
    held: dict[str, Decimal] = {}
    ids: dict[str, list[int]] = {}
    pairs: dict[str, set[str]] = {}
    for p in positions:
        base, _ = accounting.split_pair(p.pair)
        held[base] = held.get(base, ZERO) + p.qty
        ids.setdefault(base, []).append(p.id or 0)
        pairs.setdefault(base, set()).add(p.pair)
    for base in sorted(held):
        venue_total = balances[base].total if base in balances else ZERO
        if venue_total < held[base]:
            diffs.append(ReconcileDifference(
                ts=now, subject="balance", currency=base, ours_qty=held[base], venue_qty=venue_total,
                positions=tuple(ids[base]), qty_step=finest_step(markets, pairs[base])))

    for o in our_open:
        if o.client_order_id in venue_orders or now - o.created_at < order_grace:
            continue
        diffs.append(ReconcileDifference(
            ts=now, subject="order", client_order_id=o.client_order_id, side=Side(o.side), qty=o.qty, pair=o.pair,
            ours=f"open ({o.status})", venue="not open", qty_step=finest_step(markets, (o.pair,))))
    for cid, vo in venue_orders.items():
        if cid in ours_by_id:
            continue
        if vo.created_at is not None and now - vo.created_at < order_grace:
            continue
        known = others.get(cid)
        diffs.append(ReconcileDifference(
            ts=now, subject="order", client_order_id=cid, side=vo.side, qty=vo.qty, pair=vo.pair,
            ours=f"{known} (not open)" if known else "unknown order", venue=f"open ({vo.status.value})",
            qty_step=finest_step(markets, (vo.pair,))))
    return diffs


async def record_differences(db: Database, exchange: Exchange, events: EventBus, *, now: datetime,
                             markets: Mapping[str, Market] | None = None) -> list[ReconcileDifference]:
    """The balances compared now, each difference stored as an alert (the engine's check at start-up)."""
    diffs = await find_differences(db, exchange, now=now, orders=False, markets=markets)
    for d in diffs:
        await events.record(db, d)
    return diffs


async def _markets(exchange: Exchange) -> Mapping[str, Market]:
    """The venue's markets, for the quantity steps alerts show; none when the venue cannot say (the
    comparison does not depend on them)."""
    try:
        return await exchange.markets()
    except Exception:
        log.warning("reconciliation: could not read the venue's markets; quantities shown unrounded", exc_info=True)
        return {}


def finest_step(markets: Mapping[str, Market], pairs: Iterable[str]) -> Decimal | None:
    """The smallest quantity step of ``pairs`` (a currency held through several pairs is shown to the
    finest of them); None when none is known."""
    steps = [markets[p].qty_step for p in pairs if p in markets]
    return min(steps) if steps else None


async def _orders_by_client_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    stmt = select(OrderRow.client_order_id, OrderRow.status).where(col(OrderRow.client_order_id).in_(wanted))
    rows = (await session.exec(stmt)).all()
    return {cid: status for cid, status in rows}
