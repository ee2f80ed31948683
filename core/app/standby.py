"""The TradingService the chat layer sees, whichever instance is the leader.

Only the leader runs the engine. On a standby (or while leadership changes hands) queries and
intents get a clear refusal naming the leader instead of an error, so a Slack command delivered to
a standby replica says where trading happens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.ops.components import ComponentHealth, with_components
from core.ops.scheduler import LeaderScheduler
from core.trading.engine import Engine
from core.trading.intents import Intent, IntentResult
from core.trading.views import (
    BalanceView,
    HealthView,
    JobOutcome,
    JobRunSummary,
    JobView,
    PairPerformance,
    Period,
    PeriodPnl,
    PeriodUnit,
    PnlSummary,
    PositionView,
    ServiceUnavailable,
    StatusView,
    TradeView,
)
from persistence.db import Database


class Reports:
    """The report side of the chat service (``ReportService``): charts, ``/schedule``, ``/report <job>``.

    Built from the scheduler and the database, which exist on every instance; a job runs only
    where ``engine()`` says this instance trades (the leader).
    """

    def __init__(self, db: Database, scheduler: LeaderScheduler, *, engine: Callable[[], Engine | None],
                 now: Callable[[], datetime], timezone: str, quote: str) -> None:
        self._db = db
        self._scheduler = scheduler
        self._engine = engine
        self._now = now
        self._timezone = timezone
        self._quote = quote

    async def chart(self, days: int) -> bytes:
        from core.ops.reports import equity_chart_png  # matplotlib: imported when a chart is asked for

        return await equity_chart_png(self._db, days=days, now=self._now(), tz=self._timezone, quote=self._quote)

    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]:
        jobs = [JobView(j.name, j.schedule, j.next_run) for j in self._scheduler.jobs_overview()]
        runs = [JobRunSummary(r.name, r.scheduled_for, r.status) for r in await self._scheduler.recent_runs(10)]
        return jobs, runs

    async def run_job(self, name: str) -> JobOutcome:
        if self._engine() is None:
            raise ServiceUnavailable("only the leader runs scheduled jobs; this instance is a standby")
        try:
            status, events = await self._scheduler.run_now_with_events(name)
        except KeyError as exc:
            raise ServiceUnavailable(str(exc.args[0])) from None
        return JobOutcome(str(status), tuple(events))


class LeaderBoundService:
    """``TradingService`` (and ``ReportService`` when given ``reports``) for the chat layer, whichever
    instance leads: ``engine()`` is read at each call, so one object serves every leadership term.
    ``components`` adds each chat adapter's and sender's state to ``/health``."""

    def __init__(self, pairs: tuple[str, ...], engine: Callable[[], Engine | None], leader: Callable[[], str | None],
                 *, reports: Reports | None = None, components: ComponentHealth | None = None) -> None:
        self._pairs = pairs
        self._engine = engine
        self._leader = leader
        self._reports = reports
        self._components = components

    @property
    def pairs(self) -> tuple[str, ...]:
        engine = self._engine()  # the engine's own set: /pairs add and remove change it while it runs
        return engine.pairs if engine is not None else self._pairs

    def unavailable(self) -> str | None:
        """Why trading commands cannot run here now (a standby), or None. Asked before a confirmation
        is used up, so a press that would only be refused leaves the confirmation valid."""
        if self._engine() is not None:
            return None
        return ("this instance is a standby and does not trade right now; the leader answers trading "
                "commands (try again in a few seconds if leadership is changing)")

    def _get(self) -> Engine:
        engine = self._engine()
        if engine is None:
            raise ServiceUnavailable(self.unavailable() or "no engine")
        return engine

    async def submit(self, intent: Intent) -> IntentResult:
        try:
            return await self._get().submit(intent)
        except ServiceUnavailable as exc:
            return IntentResult(False, str(exc))

    async def status(self) -> StatusView:
        return await self._get().status()

    async def positions(self) -> list[PositionView]:
        return await self._get().positions()

    async def balances(self) -> list[BalanceView]:
        return await self._get().balances()

    async def pnl(self, period: Period) -> PnlSummary:
        return await self._get().pnl(period)

    async def periods(self, unit: PeriodUnit, count: int) -> list[PeriodPnl]:
        return await self._get().periods(unit, count)

    async def trades(self, count: int) -> list[TradeView]:
        return await self._get().trades(count)

    async def performance(self) -> list[PairPerformance]:
        return await self._get().performance()

    # -- reports (ReportService) -----------------------------------------------------------

    def _reporting(self) -> Reports:
        if self._reports is None:
            raise ServiceUnavailable("reports are not available on this instance")
        return self._reports

    async def chart(self, days: int) -> bytes:
        return await self._reporting().chart(days)

    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]:
        return await self._reports.schedule() if self._reports is not None else ([], [])

    async def run_job(self, name: str) -> JobOutcome:
        return await self._reporting().run_job(name)

    async def health(self) -> HealthView:
        engine = self._engine()
        if engine is None:
            view = HealthView(ok=True, components={"role": "standby", "leader": self._leader() or "none"})
        else:
            view = await engine.health()
        return with_components(view, self._components)  # chat adapters and senders: up, or down and why
