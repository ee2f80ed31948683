"""The reconciliation and retention jobs, against a real database and the paper venue."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import SQLModel, select

from core.ops.reconcile import find_differences, reconcile_job
from core.ops.retention import purge_old_rows
from core.ops.scheduler import LeaderScheduler
from exchanges.base import OrderRequest, OrderType, Side
from exchanges.clock import SimClock
from persistence.db import Database
from persistence.models import (
    AuditRow,
    ConfirmationRow,
    EquitySnapshot,
    FillRow,
    HeartbeatRow,
    JobRunRow,
    LedgerEntry,
    OrderRow,
    OutboxRow,
    PositionRow,
    ProcessedUpdateRow,
)
from tests.core.ops.test_scheduler import alert_bus, outbox_kinds, schedule
from tests.core.waiting import eventually
from tests.exchanges.test_contract_paper import paper_venue

D = Decimal
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def position(pair: str, qty: str) -> PositionRow:
    return PositionRow(pair=pair, status="open", qty=D(qty), entry_qty=D(qty), entry_cost=D(qty) * 1000,
                       opened_at=NOW - timedelta(days=1))


def order(cid: str, status: str, created_at: datetime, pair: str = "BTC/USD") -> OrderRow:
    return OrderRow(client_order_id=cid, venue="paper", pair=pair, side="buy", order_type="limit", qty=D("0.1"),
                    limit_price=D(19000), status=status, purpose="entry", created_at=created_at, updated_at=created_at)


# -- reconciliation -------------------------------------------------------------------------


async def test_reconciliation_finds_balance_and_order_differences_and_alerts(db: Database) -> None:
    async with paper_venue(db, starting_balances={"USD": D(100000), "BTC": D("0.5")}) as (paper, ctl):
        await ctl.candle("BTC/USD", D(20000), D(20000), D(20000), D(20000))
        now = ctl.clock.now()
        async with db.session() as s:
            s.add(position("BTC/USD", "0.5"))
        assert await find_differences(db, paper, now=now) == []  # books and venue agree

        # an order both sides know, one only we know, one only the venue knows, one just written
        await paper.place_order(OrderRequest("both", "BTC/USD", Side.BUY, OrderType.LIMIT, D("0.1"), D(19000)))
        await paper.place_order(OrderRequest("stray", "BTC/USD", Side.BUY, OrderType.LIMIT, D("0.2"), D(18000)))
        async with db.session() as s:
            s.add(order("both", "submitted", now - timedelta(minutes=5)))
            s.add(order("lost", "submitted", now - timedelta(minutes=5)))
        ctl.clock.advance(120)
        now = ctl.clock.now()
        async with db.session() as s:
            s.add(order("fresh", "new", now - timedelta(seconds=5)))  # the venue hears of it in a moment
        await ctl.set_balance("BTC", D("0.3"))  # someone sold coins behind the bot's back

        diffs = await find_differences(db, paper, now=now)
        found = {d.what: (d.ours, d.venue) for d in diffs if d.subject == "order"}
        assert found == {
            "order lost (buy 0.1 BTC/USD)": ("open (submitted)", "not open"),
            "order stray (buy 0.2 BTC/USD)": ("unknown order", "open (submitted)"),
        }, found
        step = (await paper.markets())["BTC/USD"].qty_step
        (balance,) = [d for d in diffs if d.subject == "balance"]
        assert (balance.currency, balance.ours_qty, balance.venue_qty, balance.positions, balance.qty_step) == (
            "BTC", D("0.5"), D("0.3"), (1,), step)
        assert balance.summary() == ("reconciliation: BTC balance below open positions: "
                                     "ours 0.5 BTC in positions #1, venue 0.3 BTC")
        stray = next(d for d in diffs if d.client_order_id == "stray")
        assert (stray.side, stray.qty, stray.pair, stray.qty_step) == ("buy", D("0.2"), "BTC/USD", step)
        assert all(d.kind == "reconcile_difference" and d.severity == "warning" for d in diffs)

        # the scheduled job announces each difference as a warning alert, with the run recorded
        clock = SimClock(now)
        sched = LeaderScheduler(db, schedule(), {"reconcile": reconcile_job(db, lambda: paper, recheck_s=0.01)},
                                instance_id="me", events=alert_bus(), clock=clock, realtime=False)
        assert await sched.run_now("reconcile") == "finished"
        assert (await outbox_kinds(db))["reconcile_difference"] == 3
        async with db.session() as s:
            run = (await s.exec(select(JobRunRow))).one()
            query = select(OutboxRow.severity).where(OutboxRow.event_type == "reconcile_difference")
            warnings = (await s.exec(query)).all()
        assert run.status == "finished" and "BTC balance below open positions" in run.detail
        assert set(warnings) == {"warning"}


async def test_an_order_we_closed_but_the_venue_keeps_open_is_a_difference(db: Database) -> None:
    async with paper_venue(db) as (paper, ctl):
        await ctl.candle("BTC/USD", D(20000), D(20000), D(20000), D(20000))
        await paper.place_order(OrderRequest("zombie", "BTC/USD", Side.BUY, OrderType.LIMIT, D("0.1"), D(19000)))
        async with db.session() as s:
            s.add(order("zombie", "cancelled", ctl.clock.now() - timedelta(hours=1)))
        ctl.clock.advance(300)
        [diff] = await find_differences(db, paper, now=ctl.clock.now())
        assert (diff.what, diff.ours, diff.venue) == ("order zombie (buy 0.1 BTC/USD)", "cancelled (not open)",
                                                      "open (submitted)")


class CountingVenue:
    """The paper venue, counting how often its balances were read (to act between two looks)."""

    def __init__(self, inner: object) -> None:
        self.inner, self.name, self.reads = inner, "paper", 0

    async def balances(self) -> object:
        self.reads += 1
        return await self.inner.balances()  # type: ignore[attr-defined]

    async def open_orders(self, pair: str | None = None) -> object:
        return await self.inner.open_orders(pair)  # type: ignore[attr-defined]

    async def fills_since(self, cursor: str | None) -> object:
        return await self.inner.fills_since(cursor)  # type: ignore[attr-defined]

    async def markets(self) -> object:
        return await self.inner.markets()  # type: ignore[attr-defined]


async def test_a_difference_gone_at_the_second_look_is_not_announced(db: Database) -> None:
    async with paper_venue(db, starting_balances={"USD": D(1000), "BTC": D("0.2")}) as (paper, ctl):
        async with db.session() as s:
            s.add(position("BTC/USD", "0.5"))  # a buy being booked: the venue shows it a moment later
        venue = CountingVenue(paper)
        sched = LeaderScheduler(db, schedule(), {"reconcile": reconcile_job(db, lambda: venue, recheck_s=0.5)},  # type: ignore[arg-type]
                                instance_id="me", events=alert_bus(), clock=SimClock(NOW), realtime=False)
        job = asyncio.create_task(sched.run_now("reconcile"))
        await eventually(lambda: venue.reads > 0, what="the reconciliation read the venue")
        await ctl.set_balance("BTC", D("0.5"))
        assert await job == "finished"
        assert venue.reads == 2 and (await outbox_kinds(db))["reconcile_difference"] == 0


async def test_reconciliation_waits_until_the_venues_fills_are_applied(db: Database) -> None:
    """After a restart or a database outage the engine may still be applying fills: a sale the
    venue already shows is no difference, the run is postponed instead of alerting."""
    async with paper_venue(db, starting_balances={"USD": D(1000), "BTC": D("0.5")}) as (paper, ctl):
        await ctl.candle("BTC/USD", D(20000), D(20000), D(20000), D(20000))
        async with db.session() as s:
            s.add(position("BTC/USD", "0.5"))
        # the exit filled at the venue; the engine has not applied that fill yet
        await paper.place_order(OrderRequest("exit", "BTC/USD", Side.SELL, OrderType.MARKET, D("0.5")))
        sched = LeaderScheduler(db, schedule(), {"reconcile": reconcile_job(db, lambda: paper, recheck_s=0.01)},
                                instance_id="me", events=alert_bus(), clock=SimClock(NOW), realtime=False)
        assert await sched.run_now("reconcile") == "finished"
        assert (await outbox_kinds(db))["reconcile_difference"] == 0
        async with db.session() as s:
            run = (await s.exec(select(JobRunRow))).one()
        assert run.detail.startswith("postponed: 1 venue fill(s) not applied yet"), run.detail


# -- retention ------------------------------------------------------------------------------


async def count(db: Database, model: type[SQLModel]) -> int:
    async with db.session() as s:
        return int((await s.exec(select(func.count()).select_from(model))).one())


async def test_retention_deletes_only_old_bookkeeping_never_the_books(db: Database) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=2)
    async with db.session() as s:
        for iid, seen in (("gone", old), ("me", old), ("alive", recent)):
            s.add(HeartbeatRow(instance_id=iid, group_name="g", host="h", pid=1, started_at=seen, last_seen=seen))
        for status, at in (("delivered", old), ("delivered", recent), ("pending", old), ("failed", old)):
            s.add(OutboxRow(destination="ops", event_type="x", severity="info", payload="{}", status=status,
                            created_at=at, next_attempt_at=at, delivered_at=at if status == "delivered" else None))
        for uid, at in (("1", old), ("2", recent)):
            s.add(ProcessedUpdateRow(platform="telegram", update_id=uid, processed_at=at))
        for job, at, status in (("checkin", old, "finished"), ("checkin", recent, "finished"),
                                ("daily_report", old, "running")):
            s.add(JobRunRow(job=job, scheduled_for=at, started_at=at, status=status))
        # the books, all of them old: never touched
        s.add(order("o1", "filled", old))
        s.add(FillRow(venue="paper", fill_id="f1", client_order_id="o1", pair="BTC/USD", side="buy", qty=D(1),
                      price=D(1), fee=D(0), ts=old))
        s.add(LedgerEntry(ts=old, venue="paper", currency="USD", amount=D(-1), kind="trade"))
        s.add(PositionRow(pair="BTC/USD", status="closed", opened_at=old, closed_at=old))
        s.add(EquitySnapshot(ts=old, equity=D(1), cash=D(1), positions_value=D(0)))
        s.add(AuditRow(ts=old, ref_id="r", platform="telegram", user_id="u", chat_id="c", command="kill",
                       decision="allowed"))
    before = {m: await count(db, m) for m in (OrderRow, FillRow, LedgerEntry, PositionRow, EquitySnapshot, AuditRow)}

    result = await purge_old_rows(db, now=NOW, days=30, keep_instance="me")
    assert (result.heartbeats, result.outbox, result.processed_updates, result.job_runs) == (1, 1, 1, 1)
    assert result.describe() == ("deleted 1 heartbeats, 1 delivered alerts, 1 processed updates, "
                                 "0 expired confirmations, 1 job runs")

    async with db.session() as s:
        assert sorted((await s.exec(select(HeartbeatRow.instance_id))).all()) == ["alive", "me"]
        outbox = Counter((r.status, r.created_at == recent) for r in (await s.exec(select(OutboxRow))).all())
        assert outbox == Counter({("delivered", True): 1, ("pending", False): 1, ("failed", False): 1})
        assert (await s.exec(select(ProcessedUpdateRow.update_id))).all() == ["2"]
        runs = sorted((r.job, r.status) for r in (await s.exec(select(JobRunRow))).all())
        assert runs == [("checkin", "finished"), ("daily_report", "running")]
    assert {m: await count(db, m) for m in before} == before
    assert (await purge_old_rows(db, now=NOW, days=30, keep_instance="me")).describe().startswith("deleted 0 ")


async def test_retention_deletes_expired_confirmations_but_not_an_interrupted_command(db: Database) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=2)

    def confirmation(nonce: str, expires: datetime, outcome: str = "",
                     executed: datetime | None = None) -> ConfirmationRow:
        return ConfirmationRow(nonce=nonce, platform="telegram", user_id="u", chat_id="c", command="close",
                               created_at=expires - timedelta(minutes=1), expires_at=expires,
                               used_at=expires if outcome else None, outcome=outcome, executed_at=executed)

    async with db.session() as s:
        s.add(confirmation("never-pressed", old))
        s.add(confirmation("cancelled", old, "cancelled"))
        s.add(confirmation("done", old, "confirmed", executed=old))
        s.add(confirmation("interrupted", old, "confirmed"))  # confirmed, then a crash: the engine completes it
        s.add(confirmation("recent", recent))

    result = await purge_old_rows(db, now=NOW, days=30, keep_instance="me")

    assert result.confirmations == 3
    assert "3 expired confirmations" in result.describe()
    async with db.session() as s:
        assert sorted((await s.exec(select(ConfirmationRow.nonce))).all()) == ["interrupted", "recent"]
