"""Reconciliation: what the venue says we hold and have open, against what the database says.

Every difference becomes a :class:`~core.events.ReconcileDifference` (a warning alert with the
details), never a silent fix: a human decides whether the books or the venue are wrong.

Checked:

* each base currency the venue holds must cover the open positions in it (holding *more* is not a
  difference: the account may hold coins the bot does not manage, and fees in the base currency are
  already deducted from positions);
* every order open in the database is open at the venue, and every order open at the venue is one
  the database knows as open.

Not checked: filled quantities of orders open on both sides, because fills reach the database
asynchronously and a lag of a few seconds is normal. Orders younger than ``order_grace`` are skipped
for the same reason: the executor writes an order (status ``new``) just before the venue hears of it.

The scheduled job compares only once the database has caught up with the venue's fills (the venue
has no fill after our stored fills cursor): after a restart or a database outage the engine may
still be applying fills, and a balance the venue already shows would otherwise be a difference for
a moment. If it has not caught up after a few looks the run says so instead of comparing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import accounting
from core.events import ReconcileDifference
from core.executor import FILL_CURSOR_KEY
from core.scheduler import JobFn, JobResult, JobRun
from exchanges.base import Exchange
from persistence.db import Database
from persistence.models import OrderRow, RuntimeValue

ZERO = Decimal(0)


async def find_differences(
    db: Database,
    exchange: Exchange,
    *,
    now: datetime,
    order_grace: timedelta = timedelta(seconds=60),
) -> list[ReconcileDifference]:
    """Compare venue balances and open orders with open positions and open orders in the database."""
    balances = await exchange.balances()
    venue_orders = {o.client_order_id: o for o in await exchange.open_orders()}
    async with db.session() as s:
        positions = await accounting.open_positions(s)
        our_open = [o for o in await accounting.orders_open(s) if o.venue == exchange.name]
        # orders the venue has open that we no longer count as open: look up their status too
        ours_by_id = {o.client_order_id: o for o in our_open}
        unknown_ids = [cid for cid in venue_orders if cid not in ours_by_id]
        others = await _orders_by_client_id(s, unknown_ids)

    diffs: list[ReconcileDifference] = []
    held: dict[str, Decimal] = {}
    ids: dict[str, list[str]] = {}
    for p in positions:
        base, _ = accounting.split_pair(p.pair)
        held[base] = held.get(base, ZERO) + p.qty
        ids.setdefault(base, []).append(f"#{p.id}")
    for base in sorted(held):
        venue_total = balances[base].total if base in balances else ZERO
        if venue_total < held[base]:
            diffs.append(ReconcileDifference(
                ts=now, what=f"{base} balance below open positions",
                ours=f"{held[base]} {base} in positions {', '.join(ids[base])}", venue=f"{venue_total} {base}"))

    for o in our_open:
        if o.client_order_id in venue_orders or now - o.created_at < order_grace:
            continue
        diffs.append(ReconcileDifference(
            ts=now, what=f"order {o.client_order_id} ({o.side} {o.qty} {o.pair})",
            ours=f"open ({o.status})", venue="not open"))
    for cid, vo in venue_orders.items():
        if cid in ours_by_id:
            continue
        if vo.created_at is not None and now - vo.created_at < order_grace:
            continue
        known = others.get(cid)
        diffs.append(ReconcileDifference(
            ts=now, what=f"order {cid} ({vo.side.value} {vo.qty} {vo.pair})",
            ours=f"{known} (not open)" if known else "unknown order", venue=f"open ({vo.status.value})"))
    return diffs


async def _orders_by_client_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    stmt = select(OrderRow.client_order_id, OrderRow.status).where(col(OrderRow.client_order_id).in_(wanted))
    rows = (await session.exec(stmt)).all()
    return {cid: status for cid, status in rows}


async def unapplied_fills(db: Database, exchange: Exchange) -> int:
    """How many fills the venue has after the fills cursor the database stored (0: caught up)."""
    async with db.read() as s:
        cur = await s.get(RuntimeValue, FILL_CURSOR_KEY)
    page = await exchange.fills_since(cur.value if cur is not None else None)
    return len(page.fills)


def reconcile_job(db: Database, venue: Callable[[], Exchange | None], *,
                  order_grace: timedelta = timedelta(seconds=60), recheck_s: float = 5.0) -> JobFn:
    """The scheduled reconciliation: its differences are announced with the run's record.

    ``venue`` is asked at each run because the venue belongs to a leadership term (it is rebuilt
    when leadership is regained); a run with no venue fails, and the failure is announced.
    Differences are confirmed by a second look ``recheck_s`` later: the venue and the database are
    read one after the other, and an order that fills in between differs for a moment only.
    """

    async def run(job: JobRun) -> JobResult:
        exchange = venue()
        if exchange is None:
            raise RuntimeError("no venue is running on this instance")
        for look in range(3):
            behind = await unapplied_fills(db, exchange)
            if not behind:
                break
            if look < 2:
                await asyncio.sleep(max(recheck_s, 0.01))
        else:
            return JobResult(events=(), detail=f"postponed: {behind} venue fill(s) not applied yet "
                                               "(the engine is catching up); compared at the next run")
        diffs = await find_differences(db, exchange, now=job.started_at, order_grace=order_grace)
        if diffs and recheck_s > 0:
            await asyncio.sleep(recheck_s)
            still = {d.what for d in await find_differences(db, exchange, now=job.started_at, order_grace=order_grace)}
            diffs = [d for d in diffs if d.what in still]
        detail = "no differences" if not diffs else "; ".join(d.summary() for d in diffs)
        return JobResult(events=tuple(diffs), detail=detail)

    return run
