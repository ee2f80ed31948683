"""Check-ins and PnL reports: the events the scheduled jobs announce, and the jobs themselves.

A report covers the *previous complete* period in the schedule's time zone: the daily report at
08:00 covers yesterday 00:00-24:00, the weekly one last Monday-Sunday, the monthly one last month.
Realized PnL, trades, win rate and best/worst pair come from positions *closed* in the period; fees
paid are every fill's fee in the period (open positions' entries included); max drawdown is over
the period's equity snapshots; unrealized PnL is that of the positions open when the report is made.
The equity chart spans ``chart_days`` (at least the period) so a day is seen in context.

The jobs return their events to the scheduler, which commits them to the outbox together with the
record of the run (see :mod:`core.ops.scheduler`); from there they reach every configured destination,
the chart as an image, and the console through the in-memory bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from core.ops.backup import backup_job
from core.ops.charts import render_equity_png
from core.ops.reconcile import reconcile_job
from core.ops.retention import retention_job
from core.ops.scheduler import JobFn, JobResult, JobRun
from core.settings.settings_models import ScheduleSettings
from core.trading import accounting
from core.trading.events import Event
from core.trading.views import StatusView, TradingService
from exchanges.base import Exchange
from persistence.db import Database
from persistence.models import FillRow

ZERO = Decimal(0)
CENTS = Decimal("0.01")


def _money(value: Decimal, sign: bool = False) -> str:
    return f"{value.quantize(CENTS):{'+' if sign else ''},}"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {mins}m" if hours else f"{mins}m"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True, kw_only=True)
class CheckIn(Event):
    """The periodic proof of life: state, equity, positions, today's PnL, data age, leadership."""

    kind: ClassVar[str] = "checkin"
    state: str
    mode: str
    venue: str
    quote: str
    equity: Decimal
    open_positions: int
    open_orders: int
    today_pnl: Decimal
    data_age_s: dict[str, float | None]
    leader: str | None
    instance_id: str
    uptime_s: float

    def summary(self) -> str:
        ages = [a for a in self.data_age_s.values() if a is not None]
        missing = [p for p, a in self.data_age_s.items() if a is None]
        data = f"data {max(ages):.0f}s old" if ages else "no market data yet"
        if ages and missing:
            data += f" (none yet for {', '.join(missing)})"
        return (f"check-in: {self.state}, {self.mode} on {self.venue}; equity {_money(self.equity)} {self.quote}; "
                f"{_count(self.open_positions, 'open position')}, {_count(self.open_orders, 'open order')}; "
                f"today {_money(self.today_pnl, True)} {self.quote}; {data}; "
                f"leader {self.leader or self.instance_id}; up {_duration(self.uptime_s)}")


def checkin_from_status(status: StatusView) -> CheckIn:
    return CheckIn(state=status.state, mode=status.mode, venue=status.venue, quote=status.quote, equity=status.equity,
                   open_positions=len(status.positions), open_orders=status.open_orders, today_pnl=status.today_pnl,
                   data_age_s=dict(status.data_age_s), leader=status.leader, instance_id=status.instance_id,
                   uptime_s=status.uptime_s)


@dataclass(frozen=True, kw_only=True)
class PnlReport(Event):
    """A period's results. ``image_png`` (the equity chart) travels to the outbox as an image."""

    kind: ClassVar[str] = "report"
    title: ClassVar[str] = "PnL report"
    period: str
    label: str
    start: datetime
    end: datetime
    timezone: str
    quote: str
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    best_pair: str | None
    best_pnl: Decimal | None
    worst_pair: str | None
    worst_pnl: Decimal | None
    max_drawdown: Decimal
    max_drawdown_pct: Decimal
    equity_start: Decimal | None
    equity_end: Decimal | None
    image_png: bytes = field(default=b"", repr=False)

    def summary(self) -> str:
        q = self.quote
        lines = [f"{self.title}: {self.label} ({self.timezone})",
                 f"PnL realized {_money(self.realized, True)} {q}, "
                 f"unrealized {_money(self.unrealized, True)} {q} (open now)"]
        if self.trades:
            rate = f"{(self.win_rate or ZERO) * 100:.0f}%"
            lines.append(f"trades {self.trades}: {self.wins} won, {self.losses} lost, win rate {rate}")
        else:
            lines.append("no trades closed")
        lines.append(f"fees paid {_money(self.fees)} {q}")
        if self.best_pair is not None and self.best_pnl is not None and self.worst_pnl is not None:
            lines.append(f"best pair {self.best_pair} {_money(self.best_pnl, True)}, "
                         f"worst {self.worst_pair} {_money(self.worst_pnl, True)}")
        lines.append(f"max drawdown {_money(self.max_drawdown)} {q} ({self.max_drawdown_pct}%)")
        if self.equity_start is not None and self.equity_end is not None:
            lines.append(f"equity {_money(self.equity_start)} -> {_money(self.equity_end)} {q}")
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class DailyReport(PnlReport):
    kind: ClassVar[str] = "report_daily"
    title: ClassVar[str] = "Daily PnL report"


@dataclass(frozen=True, kw_only=True)
class WeeklyReport(PnlReport):
    kind: ClassVar[str] = "report_weekly"
    title: ClassVar[str] = "Weekly PnL report"


@dataclass(frozen=True, kw_only=True)
class MonthlyReport(PnlReport):
    kind: ClassVar[str] = "report_monthly"
    title: ClassVar[str] = "Monthly PnL report"


REPORTS: dict[str, type[PnlReport]] = {"day": DailyReport, "week": WeeklyReport, "month": MonthlyReport}
REPORT_JOBS = {"day": "daily_report", "week": "weekly_report", "month": "monthly_report"}


def _label(unit: str, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    first, last = start.astimezone(zone), (end - timedelta(microseconds=1)).astimezone(zone)
    if unit == "day":
        return f"{first:%a %Y-%m-%d}"
    if unit == "week":
        return f"week {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    return f"{first:%B %Y}"


async def build_report(
    db: Database,
    service: TradingService,
    unit: str,
    *,
    at: datetime,
    tz: str,
    quote: str,
    chart_days: int,
    chart: bool = True,
) -> PnlReport:
    """The report for the period before the one containing ``at`` (see the module docstring)."""
    zone = ZoneInfo(tz)
    end = accounting.period_start(at, unit, tz)
    start = accounting.period_start(at, unit, tz, back=1)
    chart_from = min(start, end - timedelta(days=chart_days))
    async with db.session() as s:
        closed = [p for p in await accounting.closed_positions(s, start)
                  if p.closed_at is not None and p.closed_at < end]
        # summed here, not with SUM(): SQLite keeps money as exact text and would add it up as floats
        fee_rows = await s.exec(select(col(FillRow.fee_quote)).where(col(FillRow.ts) >= start, col(FillRow.ts) < end))
        fees = sum(fee_rows.all(), ZERO)
        points = [pt for pt in await accounting.equity_points(s, chart_from) if pt[0] <= end]
    stats = accounting.trade_stats(closed)
    in_period = [pt for pt in points if pt[0] >= start]
    dd = accounting.max_drawdown(in_period)
    unrealized = sum((p.unrealized_pnl for p in await service.positions()), ZERO)
    ranked = sorted(stats.by_pair.items(), key=lambda kv: kv[1][1])
    image = b""
    if chart:
        first = chart_from.astimezone(zone)
        title = f"Equity {first:%Y-%m-%d} to {(end - timedelta(microseconds=1)).astimezone(zone):%Y-%m-%d} ({tz})"
        image = await asyncio.to_thread(render_equity_png, points, title, tz=zone, quote=quote)
    return REPORTS[unit](
        ts=at, period=unit, label=_label(unit, start, end, zone), start=start, end=end, timezone=tz, quote=quote,
        realized=stats.realized.quantize(CENTS), unrealized=unrealized.quantize(CENTS), fees=fees.quantize(CENTS),
        trades=stats.trades, wins=stats.wins, losses=stats.losses, win_rate=stats.win_rate,
        best_pair=ranked[-1][0] if ranked else None, best_pnl=ranked[-1][1][1].quantize(CENTS) if ranked else None,
        worst_pair=ranked[0][0] if ranked else None, worst_pnl=ranked[0][1][1].quantize(CENTS) if ranked else None,
        max_drawdown=dd.amount.quantize(CENTS), max_drawdown_pct=dd.pct,
        equity_start=in_period[0][1].quantize(CENTS) if in_period else None,
        equity_end=in_period[-1][1].quantize(CENTS) if in_period else None,
        image_png=image)


async def equity_chart_png(db: Database, *, days: int, now: datetime, tz: str, quote: str) -> bytes:
    """The on-demand chart (/chart [days]): the last ``days`` of equity snapshots."""
    if not 1 <= days <= 3650:
        raise ValueError("days must be between 1 and 3650")
    zone = ZoneInfo(tz)
    since = now - timedelta(days=days)
    async with db.session() as s:
        points = await accounting.equity_points(s, since)
    title = f"Equity, last {days} day{'s' if days != 1 else ''} to {now.astimezone(zone):%Y-%m-%d %H:%M} ({tz})"
    return await asyncio.to_thread(render_equity_png, points, title, tz=zone, quote=quote)


# -- jobs ---------------------------------------------------------------------------------------


def checkin_job(service: TradingService) -> JobFn:
    async def run(job: JobRun) -> JobResult:
        event = checkin_from_status(await service.status())
        return JobResult(events=(event,), detail=event.summary()[:500])

    return run


def report_job(db: Database, service: TradingService, unit: str, *, tz: str, quote: str, chart_days: int,
               now: Callable[[], datetime] | None = None) -> JobFn:
    """A report for the period before the scheduled time (a manual run: before now).

    ``now`` overrides the scheduled time as the report's reference: pass the engine's clock when it
    replays history, so the report covers the market's previous day rather than the wall clock's.
    """
    if unit not in REPORTS:
        raise ValueError(f"unknown report period {unit!r}")

    async def run(job: JobRun) -> JobResult:
        at = now() if now is not None else job.scheduled_for
        report = await build_report(db, service, unit, at=at, tz=tz, quote=quote, chart_days=chart_days)
        return JobResult(events=(report,), detail=f"{report.label}: realized {report.realized}, {report.trades} trades")

    return run


def standard_jobs(
    db: Database,
    service: TradingService,
    settings: ScheduleSettings,
    *,
    quote: str,
    instance_id: str,
    venue: Callable[[], Exchange | None] | None = None,
    now: Callable[[], datetime] | None = None,
) -> dict[str, JobFn]:
    """Every job the settings can schedule, by name (reconciliation only when a venue is given).

    ``venue`` and ``now`` are asked at each run (see :func:`reconcile_job` and :func:`report_job`).
    """
    tz, days = settings.timezone, settings.chart_days
    jobs: dict[str, JobFn] = {
        "checkin": checkin_job(service),
        "retention": retention_job(db, days=settings.retention_days, keep_instance=instance_id),
        "backup": backup_job(db, directory=settings.backup_dir, keep=settings.backup_keep),
    }
    for unit in ("day", "week", "month"):
        jobs[REPORT_JOBS[unit]] = report_job(db, service, unit, tz=tz, quote=quote, chart_days=days, now=now)
    if venue is not None:
        jobs["reconcile"] = reconcile_job(db, venue)
    return jobs
