"""PnL reports and check-ins: the numbers for the right period, the chart, delivery through the outbox."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from PIL import Image
from sqlmodel import select

from core.ops.reports import (
    CheckIn,
    DailyReport,
    MonthlyReport,
    WeeklyReport,
    build_report,
    checkin_from_status,
    equity_chart_png,
    standard_jobs,
)
from core.ops.scheduler import LeaderScheduler
from core.trading.views import PositionView, StatusView
from exchanges.clock import SimClock
from persistence.db import Database
from persistence.models import EquitySnapshot, FillRow, OutboxRow, PositionRow
from tests.core.ops.test_scheduler import alert_bus, berlin, schedule, settle

D = Decimal
UNREALIZED = D("12.5")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeService:
    """The two views the jobs ask for; a real engine is not needed to build a report."""

    pairs = ("BTC/USD", "ETH/USD")

    def __init__(self, unrealized: Decimal = UNREALIZED) -> None:
        self.unrealized = unrealized

    async def positions(self) -> list[PositionView]:
        return [PositionView(pair="ETH/USD", qty=D(1), entry_price=D(3000), mark_price=D("3012.5"),
                             unrealized_pnl=self.unrealized, unrealized_pct=D("0.42"), stop=None, take_profit=None,
                             opened_at=datetime(2024, 5, 1, tzinfo=UTC), strategy="trend")]

    async def status(self) -> StatusView:
        return StatusView(state="running", state_reason="", state_changed_by="", state_changed_at=None, mode="paper",
                          venue="paper", quote="USD", equity=D("10250.00"), cash=D("7000"),
                          positions=tuple(await self.positions()), today_pnl=D("-3.20"),
                          data_age_s={"BTC/USD": 42.0, "ETH/USD": None}, leader="host:1:ab (epoch 3)",
                          instance_id="host:1:ab", uptime_s=3 * 3600 + 720, open_orders=1)


def closed(pair: str, pnl: str, closed_at: datetime, fees: str = "1") -> PositionRow:
    return PositionRow(pair=pair, status="closed", qty=D(0), entry_qty=D(1), entry_cost=D(1000), entry_fees=D(fees),
                       exit_qty=D(1), exit_value=D(1000) + D(pnl) + D(fees), exit_fees=D(0), realized_pnl=D(pnl),
                       opened_at=closed_at - timedelta(hours=2), closed_at=closed_at)


def fill(fid: str, ts: datetime, fee: str) -> FillRow:
    return FillRow(venue="paper", fill_id=fid, client_order_id=f"c{fid}", pair="BTC/USD", side="buy", qty=D(1),
                   price=D(1000), fee=D(fee), fee_currency="USD", fee_quote=D(fee), ts=ts)


async def seed_day(db: Database) -> None:
    """2024-05-01 in Berlin: two wins and a loss; one trade before and one after the day."""
    day = berlin(2024, 5, 1, 0, 0)
    async with db.session() as s:
        s.add(closed("BTC/USD", "120", day + timedelta(hours=10)))
        s.add(closed("BTC/USD", "30", day + timedelta(hours=15)))
        s.add(closed("ETH/USD", "-45.5", day + timedelta(hours=23, minutes=59)))
        s.add(closed("ETH/USD", "999", day - timedelta(minutes=1)))  # the day before
        s.add(closed("BTC/USD", "-999", day + timedelta(days=1)))  # today, not yet reported
        for i, (hours, fee) in enumerate(((1, "1.10"), (12, "2.20"), (25, "9"), (-2, "9"))):
            s.add(fill(str(i), day + timedelta(hours=hours), fee))
        # hourly equity over five days: rising, a dip on the reported day, recovery
        for h in range(-4 * 24, 24 + 6):
            value = D(10000) + D(h) * 2
            if 0 <= h < 24:
                value -= D(80) if 12 <= h <= 14 else 0
            s.add(EquitySnapshot(ts=day + timedelta(hours=h), equity=value, cash=value, positions_value=D(0)))


async def test_daily_report_covers_yesterday_in_local_time(db: Database) -> None:
    await seed_day(db)
    report = await build_report(db, FakeService(), "day", at=berlin(2024, 5, 2, 8, 0), tz="Europe/Berlin",
                                quote="USD", chart_days=30)
    assert isinstance(report, DailyReport) and report.kind == "report_daily" and report.severity == "info"
    assert (report.start, report.end) == (berlin(2024, 5, 1), berlin(2024, 5, 2))
    assert report.label == "Wed 2024-05-01"
    assert (report.realized, report.unrealized, report.fees) == (D("104.50"), D("12.50"), D("3.30"))
    assert (report.trades, report.wins, report.losses, report.win_rate) == (3, 2, 1, D("0.6667"))
    assert (report.best_pair, report.best_pnl, report.worst_pair, report.worst_pnl) == (
        "BTC/USD", D("150.00"), "ETH/USD", D("-45.50"))
    # peak at 11:00 (10022), trough at 12:00 (10024 - 80 = 9944): 78 down
    assert (report.max_drawdown, report.max_drawdown_pct) == (D("78.00"), D("0.78"))
    assert (report.equity_start, report.equity_end) == (D("10000.00"), D("10048.00"))
    text = report.summary()
    assert text.splitlines()[0] == "Daily PnL report: Wed 2024-05-01 (Europe/Berlin)"
    for part in ("realized +104.50 USD", "unrealized +12.50 USD", "2 won, 1 lost",
                 "win rate 67%", "fees paid 3.30 USD", "best pair BTC/USD +150.00", "worst ETH/USD -45.50",
                 "max drawdown 78.00 USD (0.78%)", "equity 10,000.00 -> 10,048.00 USD"):
        assert part in text, part
    assert report.image_png.startswith(PNG_MAGIC)


async def test_weekly_and_monthly_reports_cover_the_previous_week_and_month(db: Database) -> None:
    service = FakeService()
    week = await build_report(db, service, "week", at=berlin(2024, 4, 1, 8), tz="Europe/Berlin", quote="USD",
                              chart_days=30, chart=False)
    assert isinstance(week, WeeklyReport) and week.kind == "report_weekly"
    assert (week.start, week.end) == (berlin(2024, 3, 25), berlin(2024, 4, 1))  # spans the spring-forward night
    assert week.label == "week 2024-03-25 to 2024-03-31"
    month = await build_report(db, service, "month", at=berlin(2024, 3, 1, 8), tz="Europe/Berlin", quote="USD",
                               chart_days=30, chart=False)
    assert isinstance(month, MonthlyReport) and month.label == "February 2024"
    assert (month.start, month.end) == (berlin(2024, 2, 1), berlin(2024, 3, 1))
    assert month.trades == 0 and "no trades closed" in month.summary() and month.image_png == b""


async def test_checkin_says_what_an_operator_needs_at_a_glance() -> None:
    event = checkin_from_status(await FakeService().status())
    assert isinstance(event, CheckIn) and event.kind == "checkin"
    text = event.summary()
    for part in ("running, paper on paper", "equity 10,250.00 USD", "1 open position, 1 open order",
                 "today -3.20 USD", "data 42s old (none yet for ETH/USD)", "leader host:1:ab (epoch 3)", "up 3h 12m"):
        assert part in text, part


async def test_scheduled_report_reaches_the_outbox_once_with_its_chart(db: Database) -> None:
    await seed_day(db)
    clock = SimClock(berlin(2024, 5, 2, 7, 58))
    settings = schedule(daily_report_at="08:00", checkin_minutes=30, chart_days=7)
    jobs = standard_jobs(db, FakeService(), settings, quote="USD", instance_id="me")
    assert set(jobs) == {"checkin", "daily_report", "weekly_report", "monthly_report", "retention", "backup"}
    sched = LeaderScheduler(db, settings, jobs, instance_id="me", events=alert_bus(), clock=clock, realtime=False)
    await sched.on_elected(1)
    await settle(sched)
    while clock.now() < berlin(2024, 5, 2, 8, 10):
        clock.advance(30)
        await sched.tick()
    await sched.on_lost()

    async with db.session() as s:
        rows = list((await s.exec(select(OutboxRow).order_by(OutboxRow.id))).all())
    assert [r.event_type for r in rows] == ["checkin", "report_daily"]
    payload = json.loads(rows[1].payload)
    assert payload["text"].startswith("Daily PnL report: Wed 2024-05-01")
    assert "image_png" not in payload["data"] and payload["data"]["realized"] == "104.50"
    image = Image.open(io.BytesIO(base64.b64decode(payload["image"])))
    assert image.format == "PNG" and image.size[0] > 600


async def test_chart_on_demand_covers_the_requested_days(db: Database) -> None:
    await seed_day(db)
    png = await equity_chart_png(db, days=3, now=berlin(2024, 5, 2, 6), tz="Europe/Berlin", quote="USD")
    assert png.startswith(PNG_MAGIC)
    empty = await equity_chart_png(db, days=3, now=berlin(2030, 1, 1), tz="Europe/Berlin", quote="USD")
    assert empty.startswith(PNG_MAGIC) and empty != png


async def test_replayed_market_time_drives_the_report_period_and_a_missing_venue_fails_loudly(db: Database) -> None:
    await seed_day(db)
    wall = SimClock(datetime(2030, 1, 1, tzinfo=UTC))  # the scheduler's clock: years after the replayed data
    jobs = standard_jobs(db, FakeService(), schedule(chart_days=2), quote="USD", instance_id="me",
                         venue=lambda: None, now=lambda: berlin(2024, 5, 2, 9))
    sched = LeaderScheduler(db, schedule(), jobs, instance_id="me", events=alert_bus(), clock=wall, realtime=False)
    assert await sched.run_now("daily_report") == "finished"
    assert await sched.run_now("reconcile") == "failed"
    async with db.session() as s:
        rows = {r.event_type: json.loads(r.payload) for r in (await s.exec(select(OutboxRow))).all()}
    assert rows["report_daily"]["data"]["label"] == "Wed 2024-05-01"
    assert "no venue is running" in rows["job_failed"]["text"]
