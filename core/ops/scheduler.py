"""Leader-only scheduled jobs that run exactly once per scheduled time, across failovers.

APScheduler 3.11's ``AsyncIOScheduler`` is only the timer. It runs on the leader alone, with an
in-memory job store that is rebuilt from :class:`~core.settings.settings_models.ScheduleSettings` every time
leadership is gained and thrown away when it is lost (a job store must never be shared between
schedulers). What makes a run happen once is the ``job_runs`` table, unique on
``(job, scheduled_for)``:

1. *claim*: ``INSERT ... ON CONFLICT DO NOTHING`` of the run's row (status ``running``, a random
   claim token in ``detail``); only the instance whose insert went in runs the job;
2. *run*: the job function returns the events to announce, it does not announce them itself;
3. *finish*: one transaction marks the row ``finished`` (or ``failed``) **only if our claim token is
   still on it**, and writes the events to the outbox. The alert and the record of the run commit
   together, or not at all.

Scheduled times are the trigger's nominal fire times (UTC in the table), identical on every
instance: interval jobs count from a fixed anchor (10:00, 10:30, ... whoever started when), cron jobs
are local wall-clock times. When leadership is gained, a *catch-up* pass runs each job's most recent
scheduled time if it lies within ``misfire_grace_s`` and has no finished run: a leader that dies at
07:59:59 still gets its 08:00 report sent by the next leader, once. A row left ``running`` by a
leader that died mid-run is taken over at that point; should the old leader come back to life and
finish late, its finish no longer matches the claim token, so its result is dropped.

Missed runs older than the grace period are not run (a report hours late is noise); they are logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal, Protocol
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update

from core.runtime.lifecycle import Supervisor
from core.settings.settings_models import ScheduleSettings
from core.trading.events import Event, EventBus
from exchanges.clock import Clock, SystemClock
from persistence.db import Database
from persistence.models import JobRunRow
from persistence.upsert import insert_ignore, table_of

log = logging.getLogger("tradectl.scheduler")

ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
_RUNS = table_of(JobRunRow)
_CLAIM_RE = re.compile(r"^claim [0-9a-f]+ epoch (\d+|None)$")


# -- triggers ---------------------------------------------------------------------------------


class AlignedInterval(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no types: its classes are Any
    """Every ``interval``, counted from a fixed anchor in exact microseconds.

    APScheduler's ``IntervalTrigger`` counts from the moment the job was added and in float
    seconds, so two leaders would disagree on the scheduled times and the ``job_runs`` key would
    not deduplicate them. Here every instance computes the same slots.
    """

    __slots__ = ("anchor", "interval", "timezone")

    def __init__(self, interval: timedelta, timezone: tzinfo, anchor: datetime = ANCHOR) -> None:
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        self.interval, self.timezone, self.anchor = interval, timezone, anchor

    def latest(self, now: datetime) -> datetime:
        """The last slot at or before ``now``."""
        return (self.anchor + ((now - self.anchor) // self.interval) * self.interval).astimezone(self.timezone)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is not None:
            return (previous_fire_time + self.interval).astimezone(self.timezone)
        slot = self.latest(now)
        return slot if slot >= now else (slot + self.interval).astimezone(self.timezone)

    def __str__(self) -> str:
        return f"every {self.interval}"


def _repeated_wall_time(t: datetime) -> bool:
    """True for the second occurrence of an ambiguous local time (the hour repeated at fall-back)."""
    first = t.replace(tzinfo=None).replace(tzinfo=t.tzinfo, fold=0)
    return first.utcoffset() != t.utcoffset()


class LocalTimeCron(CronTrigger):  # type: ignore[misc]  # as above
    """A cron trigger that fires once per local wall-clock time, whatever the DST change.

    * Fall-back: APScheduler's ``CronTrigger`` fires a 02:30 job at both 02:30s of the repeated hour;
      this one skips the second.
    * Spring-forward: 02:30 does not exist. Iterating from the previous run, ``CronTrigger`` fires it
      at 01:30 UTC (03:30 summer time), but a fresh search started after 03:00 skips that day. Here a
      fresh search starts a few hours back, so the answer does not depend on where one starts
      looking: the run happens once, at 03:30 summer time.
    """

    LOOKBACK: ClassVar[timedelta] = timedelta(hours=3)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is not None:
            return self._next(previous_fire_time, now)
        limit = now.astimezone(UTC)
        t = self._next(None, now - self.LOOKBACK)
        while t is not None and t.astimezone(UTC) < limit:
            t = self._next(t, t)
        return t

    def _next(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        t: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while t is not None and _repeated_wall_time(t):
            t = super().get_next_fire_time(t, t)
        return t


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    trigger: BaseTrigger
    schedule: str  # human description, e.g. "daily 08:00"


def specs_from_settings(settings: ScheduleSettings) -> list[JobSpec]:
    """The job timetable the settings describe; jobs switched off (0 or empty) are left out."""
    tz = ZoneInfo(settings.timezone)
    specs: list[JobSpec] = []
    for name, minutes in (("checkin", settings.checkin_minutes), ("reconcile", settings.reconcile_minutes)):
        if minutes:
            specs.append(JobSpec(name, AlignedInterval(timedelta(minutes=minutes), tz), f"every {minutes} min"))
    for name, at in (("daily_report", settings.daily_time), ("retention", settings.retention_time),
                     ("backup", settings.backup_time)):
        if at:
            trigger = LocalTimeCron(hour=at[0], minute=at[1], timezone=tz)
            specs.append(JobSpec(name, trigger, f"daily {at[0]:02}:{at[1]:02}"))
    if settings.weekly_time:
        day, (h, m) = settings.weekly_time
        specs.append(JobSpec("weekly_report", LocalTimeCron(day_of_week=day, hour=h, minute=m, timezone=tz),
                             f"{day} {h:02}:{m:02}"))
    if settings.monthly_time:
        day, (h, m) = settings.monthly_time
        specs.append(JobSpec("monthly_report", LocalTimeCron(day=day, hour=h, minute=m, timezone=tz),
                             f"monthly, day {day}, {h:02}:{m:02}"))
    return specs


def latest_slot(trigger: BaseTrigger, now: datetime, grace: timedelta) -> datetime | None:
    """The trigger's most recent fire time in ``[now - grace, now]``, in UTC; None if there is none.

    Comparisons are made in UTC: two datetimes sharing a ``ZoneInfo`` compare by wall-clock time,
    which is wrong across a DST change.
    """
    if isinstance(trigger, AlignedInterval):
        slot = trigger.latest(now).astimezone(UTC)
        return slot if slot >= now - grace else None
    last = None
    t = trigger.get_next_fire_time(None, now - grace)
    while t is not None and t.astimezone(UTC) <= now:
        last = t
        t = trigger.get_next_fire_time(t, t)
    return last.astimezone(UTC) if last is not None else None


# -- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRun:
    """What a job function is told: which run this is. ``scheduled_for`` is UTC."""

    name: str
    scheduled_for: datetime
    started_at: datetime
    manual: bool = False


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a job hands back: events to announce (committed with the run's record) and a note."""

    events: tuple[Event, ...] = ()
    detail: str = ""


JobFn = Callable[[JobRun], Awaitable[JobResult | None]]
Outcome = Literal["finished", "failed", "skipped", "dropped", "cancelled"]


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """One line of /schedule: the next run is in the configured time zone."""

    name: str
    schedule: str
    next_run: datetime | None


@dataclass(frozen=True, slots=True)
class JobRunView:
    name: str
    scheduled_for: datetime
    status: str
    instance_id: str
    finished_at: datetime | None
    detail: str


@dataclass(frozen=True, kw_only=True)
class JobFailed(Event):
    kind: ClassVar[str] = "job_failed"
    severity: ClassVar[str] = "warning"
    job: str
    scheduled_for: datetime
    error: str

    def summary(self) -> str:
        return f"scheduled job {self.job} ({self.scheduled_for:%Y-%m-%d %H:%M} UTC) failed: {self.error}"


class SchedulerObserver(Protocol):
    """Told each run's outcome (with how long it ran, when this replica ran it) and each slot missed: came
    due outside its grace period, so it was not run (the metrics, when enabled)."""

    def job_run(self, job: str, outcome: str, seconds: float | None) -> None: ...
    def job_missed(self, job: str) -> None: ...


class LeaderScheduler:
    """Runs the scheduled jobs while this instance leads; hook ``on_elected``/``on_lost`` to the elector.

    ``realtime=False`` keeps APScheduler's timer paused so that only :meth:`tick` runs jobs, driven
    by the injected ``clock`` (tests, simulations). With ``realtime=True`` the clock must be the wall
    clock, since APScheduler's timer is.
    """

    name = "scheduler"

    def __init__(
        self,
        db: Database,
        settings: ScheduleSettings,
        jobs: Mapping[str, JobFn],
        *,
        instance_id: str,
        events: EventBus,
        clock: Clock | None = None,
        specs: Sequence[JobSpec] | None = None,
        realtime: bool = True,
        observer: SchedulerObserver | None = None,
    ) -> None:
        self._db, self.settings, self._jobs = db, settings, dict(jobs)
        self._observer = observer
        self.instance_id = instance_id
        self._events = events
        self._clock: Clock = clock or SystemClock()
        self._realtime = realtime
        self.timezone = ZoneInfo(settings.timezone)
        self.grace = timedelta(seconds=settings.misfire_grace_s)
        all_specs = list(specs) if specs is not None else specs_from_settings(settings)
        for spec in all_specs:
            if spec.name not in self._jobs:
                log.warning("scheduled job %s has no job function; it will not run", spec.name)
        self.specs = {s.name: s for s in all_specs if s.name in self._jobs}
        self._scheduler: AsyncIOScheduler | None = None
        self._epoch: int | None = None
        self._active: dict[tuple[str, datetime], str] = {}  # (job, slot) -> our claim token
        self._produced: dict[tuple[str, datetime], tuple[Event, ...]] = {}  # a manual run's events, for its caller
        self._settled: set[tuple[str, datetime]] = set()  # known to be claimed: no need to ask again
        # a run or the catch-up that fails is logged and recorded, never fatal (core/runtime/lifecycle.py)
        self._tasks = Supervisor("scheduler")

    @property
    def is_running(self) -> bool:
        return self._epoch is not None

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    # -- leadership -----------------------------------------------------------------------

    async def on_elected(self, epoch: int) -> None:
        """Build a fresh in-memory timetable and start it, then catch up on runs due within grace.

        The catch-up runs in its own task so that a slow report never delays the lease renewal.
        """
        if self._scheduler is not None:
            await self.on_lost()
        self._epoch = epoch
        if not self.settings.enabled:
            log.info("scheduled jobs are disabled (schedule.enabled = false)")
            return
        sched = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()}, timezone=self.timezone,
            job_defaults={"misfire_grace_time": self.settings.misfire_grace_s, "coalesce": True, "max_instances": 1})
        for spec in self.specs.values():
            sched.add_job(self._fire, trigger=spec.trigger, args=(spec.name, epoch), id=spec.name, name=spec.name,
                          replace_existing=True)
        sched.add_listener(self._missed, EVENT_JOB_MISSED)
        sched.start(paused=not self._realtime)
        self._scheduler = sched
        self._tasks.spawn("scheduler:catch-up", self.catch_up())
        log.info("scheduler started for epoch %d: %s", epoch,
                 ", ".join(f"{s.name} ({s.schedule})" for s in self.specs.values()) or "no jobs")

    async def on_lost(self) -> None:
        """Stop the timer, forget the timetable and cancel runs in progress (their claims are left
        ``running``; the next leader takes them over)."""
        self._epoch = None
        sched, self._scheduler = self._scheduler, None
        if sched is not None and sched.running:
            sched.shutdown(wait=False)
        await self._tasks.stop()
        self._settled.clear()

    async def stop(self) -> None:
        await self.on_lost()

    def running_tasks(self) -> list[str]:
        """The names of the runs (and the catch-up pass) in progress."""
        return self._tasks.running()

    # -- what is due ----------------------------------------------------------------------

    def due_runs(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Each job's latest scheduled time within the grace period not yet known to be claimed."""
        now = (now or self._now()).astimezone(UTC)
        self._settled = {k for k in self._settled if k[1] >= now - self.grace - timedelta(minutes=1)}
        due = []
        for spec in self.specs.values():
            slot = latest_slot(spec.trigger, now, self.grace)
            if slot is not None and (spec.name, slot) not in self._settled and (spec.name, slot) not in self._active:
                due.append((spec.name, slot))
        return due

    async def tick(self, now: datetime | None = None) -> list[tuple[str, datetime, Outcome]]:
        """Run whatever is due and unclaimed, one job after another (the injected-clock driver)."""
        return await self._run_due(now, takeover=False)

    async def catch_up(self) -> list[tuple[str, datetime, Outcome]]:
        """On gaining leadership: run missed slots within grace, taking over orphaned claims."""
        try:
            return await self._run_due(None, takeover=True)
        except Exception:
            log.exception("scheduler catch-up failed")
            return []

    async def _run_due(self, now: datetime | None, *, takeover: bool) -> list[tuple[str, datetime, Outcome]]:
        return [(name, slot, await self._run(name, slot, takeover=takeover)) for name, slot in self.due_runs(now)]

    async def _fire(self, name: str, epoch: int) -> None:
        """APScheduler's entry point: run this job's slot that has just come due."""
        if epoch != self._epoch:
            return  # a timer of a previous leadership term that had not stopped yet
        slot = latest_slot(self.specs[name].trigger, self._now(), self.grace)
        if slot is None:
            log.warning("job %s fired outside its grace period; skipped", name)
            self._count_miss(name)
            return
        await self._run(name, slot, takeover=False)

    async def run_now(self, name: str) -> Outcome:
        """Run a job at once (an admin's "report now"), recorded with ``scheduled_for`` = now."""
        return (await self.run_now_with_events(name))[0]

    async def run_now_with_events(self, name: str) -> tuple[Outcome, tuple[Event, ...]]:
        """:meth:`run_now`, also returning the events the run announced (a report, for whoever asked)."""
        if name not in self._jobs:
            raise KeyError(f"unknown job {name!r}; known: {', '.join(sorted(self._jobs))}")
        slot = self._now()
        outcome = await self._run(name, slot, takeover=False, manual=True)
        return outcome, self._produced.pop((name, slot), ())

    def _missed(self, event: Any) -> None:
        """APScheduler's EVENT_JOB_MISSED: a run time passed beyond ``misfire_grace_s`` (a blocked loop)."""
        log.warning("job %s missed its run at %s (beyond the grace period)", event.job_id,
                    getattr(event, "scheduled_run_time", "?"))
        self._count_miss(event.job_id)

    def _count_miss(self, name: str) -> None:
        if self._observer is not None:
            try:
                self._observer.job_missed(name)
            except Exception:  # counting never stops a job
                log.warning("could not count a missed run", exc_info=True)

    # -- one run --------------------------------------------------------------------------

    async def _run(self, name: str, slot: datetime, *, takeover: bool, manual: bool = False) -> Outcome:
        began = time.monotonic()
        outcome = await self._run_once(name, slot, takeover=takeover, manual=manual)
        ran = outcome in ("finished", "failed", "dropped")
        if self._observer is not None:
            try:
                self._observer.job_run(name, outcome, time.monotonic() - began if ran else None)
            except Exception:  # counting never stops a job
                log.warning("could not count a scheduled run", exc_info=True)
        return outcome

    async def _run_once(self, name: str, slot: datetime, *, takeover: bool, manual: bool = False) -> Outcome:
        key = (name, slot)
        if key in self._active:
            return "skipped"
        started = self._now()
        token = await self._claim(name, slot, started, takeover=takeover)
        if token is None:
            self._settled.add(key)
            return "skipped"
        self._active[key] = token
        task = self._tasks.spawn(f"scheduler:{name}:{slot.isoformat()}",
                                 self._execute(JobRun(name, slot, started, manual), token))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current and current.cancelling()):
                return "cancelled"  # leadership was lost under us; our caller was not cancelled
            raise

    async def _execute(self, run: JobRun, token: str) -> Outcome:
        try:
            status: Outcome = "finished"
            events: tuple[Event, ...] = ()
            try:
                result = await self._jobs[run.name](run) or JobResult()
                detail, events = result.detail, tuple(result.events)
            except Exception as exc:
                log.exception("scheduled job %s failed", run.name)
                status, detail = "failed", f"{type(exc).__name__}: {exc}"[:500]
                events = (JobFailed(job=run.name, scheduled_for=run.scheduled_for, error=detail),)
            if run.manual:
                self._produced[(run.name, run.scheduled_for)] = events
            return status if await self._finish(run, token, status, detail, events) else "dropped"
        finally:
            self._active.pop((run.name, run.scheduled_for), None)
            self._settled.add((run.name, run.scheduled_for))

    async def _claim(self, name: str, slot: datetime, now: datetime, *, takeover: bool) -> str | None:
        token = f"claim {secrets.token_hex(8)} epoch {self._epoch}"
        where = (_RUNS.c.job == name, _RUNS.c.scheduled_for == slot)
        values = {"job": name, "scheduled_for": slot, "started_at": now, "status": "running",
                  "instance_id": self.instance_id, "detail": token}
        async with self._db.begin() as conn:
            res = await conn.execute(insert_ignore(self._db.dialect, _RUNS, values, ["job", "scheduled_for"]))
            if res.rowcount == 1:
                return token
            if not takeover:
                return None
            query = select(_RUNS.c.status, _RUNS.c.detail, _RUNS.c.instance_id).where(*where)
            row = (await conn.execute(query)).first()
            if row is None or row.status != "running" or not self._older_claim(row.detail):
                return None
            res = await conn.execute(update(_RUNS)
                                     .where(*where, _RUNS.c.status == "running", _RUNS.c.detail == row.detail)
                                     .values(started_at=now, instance_id=self.instance_id, detail=token))
            if res.rowcount != 1:
                return None
        log.warning("took over run %s %s left unfinished by %s", name, slot.isoformat(), row.instance_id)
        return token

    def _older_claim(self, detail: str) -> bool:
        """A claim made under an earlier leadership term: its leader has stepped down since."""
        match = _CLAIM_RE.match(detail)
        if match is None or self._epoch is None or detail in self._active.values():
            return False
        return match.group(1) == "None" or int(match.group(1)) < self._epoch

    async def _finish(self, run: JobRun, token: str, status: str, detail: str, events: Sequence[Event]) -> bool:
        """Record the outcome and stage its events in one transaction, only if the claim is still ours."""
        async with self._db.session() as s:
            conn = await s.connection()
            res = await conn.execute(
                update(_RUNS).where(_RUNS.c.job == run.name, _RUNS.c.scheduled_for == run.scheduled_for,
                                    _RUNS.c.status == "running", _RUNS.c.detail == token)
                .values(status=status, finished_at=self._now(), detail=detail[:2000]))
            if res.rowcount != 1:
                log.warning("run %s %s was taken over by another instance; its result is dropped",
                            run.name, run.scheduled_for.isoformat())
                return False
            for event in events:
                self._events.stage(s, event)
        return True

    # -- for /schedule ----------------------------------------------------------------------

    def jobs_overview(self, now: datetime | None = None) -> list[ScheduledJob]:
        """Every configured job with its next run in the configured time zone (works on followers too).

        Empty when ``schedule.enabled`` is false: nothing will run by itself.
        """
        if not self.settings.enabled:
            return []
        now = (now or self._now()).astimezone(UTC)
        out = []
        for spec in self.specs.values():
            nxt = spec.trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
            out.append(ScheduledJob(spec.name, spec.schedule, nxt.astimezone(self.timezone) if nxt else None))
        return sorted(out, key=lambda j: (j.next_run is None, j.next_run or now))

    async def recent_runs(self, limit: int = 20) -> list[JobRunView]:
        """The latest recorded runs, newest first (times in the configured time zone)."""
        stmt = select(_RUNS).order_by(_RUNS.c.scheduled_for.desc()).limit(limit)
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [JobRunView(r.job, r.scheduled_for.astimezone(self.timezone), r.status, r.instance_id,
                           r.finished_at.astimezone(self.timezone) if r.finished_at else None, r.detail) for r in rows]
