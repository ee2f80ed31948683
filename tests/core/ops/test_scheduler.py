"""The leader scheduler: cadence, local times across DST changes, exactly-once across failovers.

Time is an injected :class:`SimClock`; APScheduler's timer stays paused (``realtime=False``) and
:meth:`LeaderScheduler.tick` plays its part, except in the one short real-loop test at the end.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from pydantic import ValidationError
from sqlmodel import select

from core.ops.outbox import OutboxWriter
from core.ops.scheduler import (
    AlignedInterval,
    JobResult,
    JobRun,
    JobSpec,
    LeaderScheduler,
    LocalTimeCron,
    latest_slot,
    specs_from_settings,
)
from core.settings.settings_models import Destination, NotifySettings, ScheduleSettings
from core.trading.events import Event, EventBus
from exchanges.clock import SimClock
from persistence.db import Database
from persistence.models import JobRunRow, OutboxRow

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)  # type: ignore[misc]


def alert_bus() -> EventBus:
    """An event bus whose alerts go to one Telegram destination's outbox rows."""
    dest = Destination(name="ops", platform="telegram", target="1")
    return EventBus(outbox=OutboxWriter(NotifySettings(destinations=(dest,))))


def schedule(**overrides: object) -> ScheduleSettings:
    """Everything off unless the test switches it on; Europe/Berlin; five minutes of grace."""
    values: dict[str, object] = dict(timezone="Europe/Berlin", checkin_minutes=0, daily_report_at="", weekly_report="",
                                     monthly_report="", reconcile_minutes=0, retention_at="", misfire_grace_s=300)
    values.update(overrides)
    return ScheduleSettings(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class Ran(Event):
    kind: ClassVar[str] = "test_ran"
    job: str
    slot: datetime

    def summary(self) -> str:
        return f"{self.job} ran for {self.slot.isoformat()}"


class Recorder:
    """A job function that remembers every scheduled time it ran for and announces it."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    async def __call__(self, run: JobRun) -> JobResult:
        self.runs.append((run.name, run.scheduled_for))
        return JobResult(events=(Ran(job=run.name, slot=run.scheduled_for),), detail="ok")

    def times(self, name: str) -> list[datetime]:
        return [t for n, t in self.runs if n == name]


def make(db: Database, settings: ScheduleSettings, jobs: dict[str, object], clock: SimClock, instance: str = "a",
         **kw: object) -> LeaderScheduler:
    return LeaderScheduler(db, settings, jobs, instance_id=instance, events=alert_bus(), clock=clock,  # type: ignore[arg-type]
                           realtime=False, **kw)  # type: ignore[arg-type]


async def drive(sched: LeaderScheduler, clock: SimClock, until: datetime, step: timedelta) -> None:
    while clock.now() < until:
        clock.advance(step)
        await sched.tick()


async def job_rows(db: Database) -> list[JobRunRow]:
    async with db.session() as s:
        return list((await s.exec(select(JobRunRow).order_by(JobRunRow.scheduled_for))).all())


async def outbox_kinds(db: Database) -> Counter[str]:
    async with db.session() as s:
        return Counter(r.event_type for r in (await s.exec(select(OutboxRow))).all())


async def settle(sched: LeaderScheduler) -> None:
    """Wait for the catch-up task started by ``on_elected``."""
    for _ in range(200):
        if not sched.running_tasks():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("scheduler tasks did not finish")


# -- triggers and DST -----------------------------------------------------------------------


def fire_times(trigger: object, start: datetime, end: datetime) -> list[datetime]:
    out, t = [], trigger.get_next_fire_time(None, start)  # type: ignore[attr-defined]
    while t is not None and t.astimezone(UTC) < end:
        out.append(t.astimezone(UTC))
        t = trigger.get_next_fire_time(t, t)  # type: ignore[attr-defined]
    return out


def test_spring_forward_local_times_fire_once_each_day() -> None:
    start, end = utc(2024, 3, 29), utc(2024, 4, 2)
    # 02:30 does not exist on 2024-03-31 in Berlin: it runs once, at 03:30 CEST (01:30 UTC)
    assert fire_times(LocalTimeCron(hour=2, minute=30, timezone=BERLIN), start, end) == [
        utc(2024, 3, 29, 1, 30), utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]
    # whoever asks after 03:00 summer time (a scheduler started then) still gets that day's run
    late = LocalTimeCron(hour=2, minute=30, timezone=BERLIN).get_next_fire_time(None, utc(2024, 3, 31, 1, 10))
    assert late is not None and late.astimezone(UTC) == utc(2024, 3, 31, 1, 30)
    assert latest_slot(LocalTimeCron(hour=2, minute=30, timezone=BERLIN), utc(2024, 3, 31, 1, 33),
                       timedelta(minutes=5)) == utc(2024, 3, 31, 1, 30)
    # 08:00 local is 07:00 UTC before the change and 06:00 UTC from the change day on
    assert fire_times(LocalTimeCron(hour=8, minute=0, timezone=BERLIN), start, end) == [
        utc(2024, 3, 29, 7), utc(2024, 3, 30, 7), utc(2024, 3, 31, 6), utc(2024, 4, 1, 6)]


def test_fall_back_repeated_hour_does_not_fire_twice() -> None:
    start, end = utc(2024, 10, 25), utc(2024, 10, 29)
    plain = fire_times(CronTrigger(hour=2, minute=30, timezone=BERLIN), start, end)
    assert plain.count(utc(2024, 10, 27, 0, 30)) == 1 and utc(2024, 10, 27, 1, 30) in plain  # the bug we avoid
    assert fire_times(LocalTimeCron(hour=2, minute=30, timezone=BERLIN), start, end) == [
        utc(2024, 10, 25, 0, 30), utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    assert fire_times(LocalTimeCron(hour=8, minute=0, timezone=BERLIN), start, end) == [
        utc(2024, 10, 25, 6), utc(2024, 10, 26, 6), utc(2024, 10, 27, 7), utc(2024, 10, 28, 7)]


def test_interval_slots_are_the_same_whenever_an_instance_starts() -> None:
    a = AlignedInterval(timedelta(minutes=30), BERLIN)
    assert a.get_next_fire_time(None, utc(2024, 5, 1, 10, 7, 13)).astimezone(UTC) == utc(2024, 5, 1, 10, 30)
    assert a.get_next_fire_time(None, utc(2024, 5, 1, 10, 30)).astimezone(UTC) == utc(2024, 5, 1, 10, 30)
    assert latest_slot(a, utc(2024, 5, 1, 10, 34), timedelta(minutes=5)) == utc(2024, 5, 1, 10, 30)
    assert latest_slot(a, utc(2024, 5, 1, 10, 36), timedelta(minutes=5)) is None  # beyond the grace period
    tiny = AlignedInterval(timedelta(milliseconds=200), UTC)
    assert latest_slot(tiny, utc(2024, 5, 1, 0, 0, 1) + timedelta(microseconds=350_001), timedelta(seconds=1)) == \
        utc(2024, 5, 1, 0, 0, 1) + timedelta(milliseconds=200)


def test_settings_describe_the_timetable_and_refuse_nonsense() -> None:
    specs = {s.name: s.schedule for s in specs_from_settings(ScheduleSettings())}
    assert specs == {"checkin": "every 30 min", "daily_report": "daily 08:00", "weekly_report": "mon 08:00",
                     "monthly_report": "monthly, day 1, 08:00", "reconcile": "every 15 min", "retention": "daily 03:30"}
    assert specs_from_settings(schedule()) == []
    for bad in ({"timezone": "Mars/Olympus"}, {"daily_report_at": "8am"}, {"daily_report_at": "24:00"},
                {"weekly_report": "someday 08:00"}, {"weekly_report": "mon"}, {"monthly_report": "31 08:00"},
                {"checkin_minutes": -1}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            ScheduleSettings(**bad)  # type: ignore[arg-type]
    assert ScheduleSettings(monthly_report="last 23:59").monthly_time == ("last", (23, 59))


# -- cadence --------------------------------------------------------------------------------


async def test_checkins_arrive_every_30_minutes(db: Database) -> None:
    clock = SimClock(berlin(2024, 5, 1, 9, 50))
    rec = Recorder()
    sched = make(db, schedule(checkin_minutes=30), {"checkin": rec}, clock)
    await sched.on_elected(1)
    await settle(sched)
    await drive(sched, clock, berlin(2024, 5, 1, 12, 10), timedelta(minutes=1))
    slots = ((10, 0), (10, 30), (11, 0), (11, 30), (12, 0))
    assert rec.times("checkin") == [berlin(2024, 5, 1, h, m) for h, m in slots]
    assert (await outbox_kinds(db))["test_ran"] == 5
    # a pause longer than the grace period: the missed slot is not sent late, the next one is
    clock.advance_to(berlin(2024, 5, 1, 12, 50))
    await sched.tick()
    clock.advance_to(berlin(2024, 5, 1, 13, 0, 30))
    await sched.tick()
    assert rec.times("checkin")[-1] == berlin(2024, 5, 1, 13, 0) and len(rec.runs) == 6
    await sched.on_lost()


async def test_daily_report_and_0230_job_once_a_day_across_both_dst_changes(db: Database) -> None:
    rec = Recorder()
    settings = schedule(daily_report_at="08:00", retention_at="02:30")
    for start, end, expect_daily, expect_0230 in (
        (utc(2024, 3, 29, 12), utc(2024, 4, 1, 12),
         [utc(2024, 3, 30, 7), utc(2024, 3, 31, 6), utc(2024, 4, 1, 6)],
         [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]),
        (utc(2024, 10, 25, 12), utc(2024, 10, 28, 12),
         [utc(2024, 10, 26, 6), utc(2024, 10, 27, 7), utc(2024, 10, 28, 7)],
         [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]),
    ):
        rec.runs.clear()
        clock = SimClock(start)
        sched = make(db, settings, {"daily_report": rec, "retention": rec}, clock)
        await sched.on_elected(1)
        await drive(sched, clock, end, timedelta(minutes=4))
        await sched.on_lost()
        assert rec.times("daily_report") == expect_daily
        assert rec.times("retention") == expect_0230
        assert all(t.astimezone(BERLIN).hour == 8 for t in rec.times("daily_report"))


# -- failover -------------------------------------------------------------------------------


async def test_leader_killed_just_before_the_report_gives_exactly_one_report(db: Database) -> None:
    clock = SimClock(berlin(2024, 5, 2, 7, 59, 30))
    first, second, third = Recorder(), Recorder(), Recorder()
    settings = schedule(daily_report_at="08:00")
    old = make(db, settings, {"daily_report": first}, clock, "old")
    await old.on_elected(1)
    await settle(old)
    clock.advance_to(berlin(2024, 5, 2, 7, 59, 59))
    await old.tick()
    # the old leader dies here: no on_lost, no more ticks. The lease expires; a standby wins it.
    clock.advance_to(berlin(2024, 5, 2, 8, 0, 7))
    new = make(db, settings, {"daily_report": second}, clock, "new")
    await new.on_elected(2)
    await settle(new)
    await drive(new, clock, berlin(2024, 5, 2, 8, 10), timedelta(seconds=30))
    # a restart (or a further failover) afterwards does not send it again
    again = make(db, settings, {"daily_report": third}, clock, "again")
    await again.on_elected(3)
    await settle(again)

    assert first.runs == [] and third.runs == []
    assert second.times("daily_report") == [berlin(2024, 5, 2, 8, 0)]
    rows = await job_rows(db)
    assert [(r.job, r.scheduled_for, r.status, r.instance_id) for r in rows] == [
        ("daily_report", berlin(2024, 5, 2, 8, 0), "finished", "new")]
    assert (await outbox_kinds(db))["test_ran"] == 1
    for s in (new, again):
        await s.on_lost()


async def test_a_run_orphaned_mid_way_is_taken_over_and_the_zombie_result_dropped(db: Database) -> None:
    clock = SimClock(berlin(2024, 5, 2, 8, 0, 1))
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(run: JobRun) -> JobResult:
        started.set()
        await release.wait()
        return JobResult(events=(Ran(job=run.name, slot=run.scheduled_for),), detail="from the old leader")

    settings = schedule(daily_report_at="08:00")
    old = make(db, settings, {"daily_report": slow}, clock, "old")
    await old.on_elected(1)
    await asyncio.wait_for(started.wait(), 5)  # its catch-up claimed 08:00 and is running it
    # it loses the lease but, stalled, never learns of it: no on_lost, its run just hangs
    zombie = old._tasks.task(next(n for n in old.running_tasks() if n.startswith("scheduler:daily_report:")))
    assert zombie is not None
    await asyncio.wait_for(started.wait(), 5)  # claimed and running; now the old leader loses the lease

    clock.advance_to(berlin(2024, 5, 2, 8, 0, 9))
    rec = Recorder()
    new = make(db, settings, {"daily_report": rec}, clock, "new")
    await new.on_elected(2)
    await settle(new)
    assert rec.times("daily_report") == [berlin(2024, 5, 2, 8, 0)]

    release.set()  # the old leader wakes up late and tries to finish
    assert await asyncio.wait_for(zombie, 5) == "dropped"
    rows = await job_rows(db)
    assert [(r.status, r.instance_id, r.detail) for r in rows] == [("finished", "new", "ok")]
    assert (await outbox_kinds(db))["test_ran"] == 1
    for s in (old, new):
        await s.on_lost()


async def test_a_run_missed_by_more_than_the_grace_period_is_not_sent_late(db: Database) -> None:
    clock = SimClock(berlin(2024, 5, 2, 8, 5, 1))  # grace is 300 s
    rec = Recorder()
    sched = make(db, schedule(daily_report_at="08:00"), {"daily_report": rec}, clock)
    await sched.on_elected(1)
    await settle(sched)
    assert rec.runs == [] and await job_rows(db) == []
    await sched.on_lost()


async def test_a_failed_job_is_recorded_and_announced_once(db: Database) -> None:
    clock = SimClock(berlin(2024, 5, 2, 8, 0, 2))

    async def broken(run: JobRun) -> JobResult:
        raise RuntimeError("venue unreachable")

    sched = make(db, schedule(daily_report_at="08:00"), {"daily_report": broken}, clock)
    assert await sched.tick() == [("daily_report", berlin(2024, 5, 2, 8), "failed")]
    clock.advance(60)
    assert await sched.tick() == []
    [row] = await job_rows(db)
    assert row.status == "failed" and "venue unreachable" in row.detail
    assert (await outbox_kinds(db))["job_failed"] == 1


# -- /schedule and "report now" -------------------------------------------------------------


async def test_overview_lists_next_runs_in_local_time_and_run_now_records_a_run(db: Database) -> None:
    clock = SimClock(berlin(2024, 3, 30, 9, 0))
    rec = Recorder()
    settings = schedule(checkin_minutes=30, daily_report_at="08:00", weekly_report="mon 08:00")
    sched = make(db, settings, {"checkin": rec, "daily_report": rec, "weekly_report": rec}, clock)
    overview = sched.jobs_overview()
    assert [(j.name, j.next_run) for j in overview] == [
        ("checkin", datetime(2024, 3, 30, 9, 30, tzinfo=BERLIN)),
        ("daily_report", datetime(2024, 3, 31, 8, 0, tzinfo=BERLIN)),  # the first CEST morning
        ("weekly_report", datetime(2024, 4, 1, 8, 0, tzinfo=BERLIN))]
    assert all(j.next_run is not None and j.next_run.tzinfo == BERLIN for j in overview)
    assert overview[1].next_run.astimezone(UTC) == utc(2024, 3, 31, 6)  # type: ignore[union-attr]

    clock.advance(12.5)
    assert await sched.run_now("daily_report") == "finished"
    assert rec.runs == [("daily_report", berlin(2024, 3, 30, 9, 0, 12) + timedelta(milliseconds=500))]
    [view] = await sched.recent_runs()
    assert view.name == "daily_report" and view.status == "finished" and view.scheduled_for.tzinfo == BERLIN
    with pytest.raises(KeyError):
        await sched.run_now("nonsense")


# -- the real APScheduler loop --------------------------------------------------------------


async def test_real_timer_two_schedulers_sharing_a_database_run_each_slot_once(db: Database) -> None:
    calls: Counter[datetime] = Counter()

    async def job(run: JobRun) -> JobResult:
        calls[run.scheduled_for] += 1
        await asyncio.sleep(0.01)
        return JobResult(events=(Ran(job=run.name, slot=run.scheduled_for),))

    spec = JobSpec("checkin", AlignedInterval(timedelta(milliseconds=200), UTC), "every 0.2 s")
    settings = schedule(misfire_grace_s=1)
    pair = [LeaderScheduler(db, settings, {"checkin": job}, instance_id=name, events=alert_bus(), specs=[spec])
            for name in ("a", "b")]
    for i, s in enumerate(pair):
        await s.on_elected(i + 1)
    await asyncio.sleep(1.5)
    for s in pair:
        await s.on_lost()
    ran = len(calls)
    await asyncio.sleep(0.5)  # stopped timers fire nothing more

    assert ran >= 5 and len(calls) == ran
    # Both run the timer at once (a split brain the lease normally prevents). Each slot runs once;
    # the only exception allowed is the run in flight when "b" (the newer epoch) was elected: "b"
    # takes it over and "a"'s result is dropped, so even then it is announced once.
    assert sum(calls.values()) - len(calls) <= 1, calls
    rows = await job_rows(db)
    # A slot claimed in the instant its timer was stopped has a row but no call: at most one per
    # scheduler, and it says "running" (it never finished).
    assert ran <= len(rows) <= ran + 2 and {r.status for r in rows} <= {"finished", "running"}
    assert all(r.status == "running" for r in rows if r.scheduled_for not in calls)
    assert {r.instance_id for r in rows} <= {"a", "b"}
    async with db.session() as s:
        announced = Counter(json.loads(r.payload)["data"]["slot"] for r in (await s.exec(select(OutboxRow))).all())
    assert set(announced.values()) == {1} and len(announced) == sum(r.status == "finished" for r in rows)
    assert not any(s.is_running for s in pair)
