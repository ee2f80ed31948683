"""The scheduled reconciliation of the venue with the database.

What is compared, and why, is :mod:`core.trading.reconciliation` (one implementation, which the
engine's start-up check uses too); this module runs it as a job.

The scheduled job compares only once the database has caught up with the venue's fills (the venue
has no fill after our stored fills cursor): after a restart or a database outage the engine may
still be applying fills, and a balance the venue already shows would otherwise be a difference for
a moment. If it has not caught up after a few looks the run says so instead of comparing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from core.ops.scheduler import JobFn, JobResult, JobRun
from core.trading.executor import FILL_CURSOR_KEY
from core.trading.reconciliation import find_differences
from exchanges.base import Exchange
from persistence.db import Database
from persistence.models import RuntimeValue

__all__ = ["find_differences", "reconcile_job", "unapplied_fills"]


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
