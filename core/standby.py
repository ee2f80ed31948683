"""The TradingService the chat layer sees, whichever instance is the leader.

Only the leader runs the engine. On a standby (or while leadership changes hands) queries and
intents get a clear refusal naming the leader instead of an error, so a Slack command delivered to
a standby replica says where trading happens.
"""

from __future__ import annotations

from collections.abc import Callable

from core.components import ComponentHealth, with_components
from core.engine import Engine
from core.intents import Intent, IntentResult
from core.views import (ServiceUnavailable, BalanceView, HealthView, JobOutcome, JobRunSummary, JobView, PairPerformance, PeriodPnl, PnlSummary, PositionView, StatusView,
                        TradeView)


class LeaderBoundService:
    scheduler: object = None  # the LeaderScheduler, for /schedule and /report
    components: ComponentHealth | None = None  # component states for /health
    db: object = None  # for charts
    timezone: str = "UTC"
    quote: str = "USD"

    def __init__(self, pairs: tuple[str, ...], engine: Callable[[], Engine | None], leader: Callable[[], str | None]) -> None:
        self._pairs = pairs
        self._engine = engine
        self._leader = leader

    @property
    def pairs(self) -> tuple[str, ...]:
        return self._pairs

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

    async def pnl(self, period: str) -> PnlSummary:  # type: ignore[override]
        return await self._get().pnl(period)

    async def periods(self, unit: str, count: int) -> list[PeriodPnl]:  # type: ignore[override]
        return await self._get().periods(unit, count)

    async def trades(self, count: int) -> list[TradeView]:
        return await self._get().trades(count)

    async def performance(self) -> list[PairPerformance]:
        return await self._get().performance()

    # -- reports (ReportService) -----------------------------------------------------------

    async def chart(self, days: int) -> bytes:
        from datetime import UTC, datetime

        from core.reports import equity_chart_png

        if self.db is None:
            raise ServiceUnavailable("charts are not available on this instance")
        engine = self._engine()
        now = engine.clock.now() if engine is not None else datetime.now(UTC)
        return await equity_chart_png(self.db, days=days, now=now, tz=self.timezone, quote=self.quote)

    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]:
        if self.scheduler is None:
            return [], []
        jobs = [JobView(j.name, j.schedule, j.next_run) for j in self.scheduler.jobs_overview()]  # type: ignore[attr-defined]
        runs = [JobRunSummary(r.name, r.scheduled_for, r.status) for r in await self.scheduler.recent_runs(10)]  # type: ignore[attr-defined]
        return jobs, runs

    async def run_job(self, name: str) -> JobOutcome:
        if self.scheduler is None:
            raise ServiceUnavailable("no scheduler on this instance")
        if self._engine() is None:
            raise ServiceUnavailable("only the leader runs scheduled jobs; this instance is a standby")
        try:
            status, events = await self.scheduler.run_now_with_events(name)  # type: ignore[attr-defined]
        except KeyError as exc:
            raise ServiceUnavailable(str(exc.args[0])) from None
        return JobOutcome(str(status), tuple(events))

    async def health(self) -> HealthView:
        engine = self._engine()
        if engine is None:
            view = HealthView(ok=True, components={"role": "standby", "leader": self._leader() or "none"})
        else:
            view = await engine.health()
        return with_components(view, self.components)  # chat adapters and senders: up, or down and why
