"""Event-loop lag in /health and the chat alert about it: one alert for a sustained lag, one recovered
notice, nothing in between however the figure moves (the hysteresis)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlmodel import select

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from core.app.standby import LeaderBoundService
from core.ops.components import ComponentHealth
from core.ops.loop_lag import COMPONENT, EventLoopLagging, EventLoopRecovered, LagAlarm, LoopLagMonitor, LoopLagWatch
from core.ops.outbox import OutboxWriter
from core.settings.config import load_settings
from core.settings.settings_models import ChatSettings, Destination, NotifySettings
from core.trading import EventBus
from persistence.db import Database
from persistence.models import OutboxRow
from tests.bot.conftest import ADMIN, BASE_SETTINGS
from tests.core.waiting import eventually
from tests.fakes.clock import ManualClock


def test_the_alarm_raises_once_after_a_sustained_lag_and_clears_once_after_a_sustained_calm() -> None:
    alarm = LagAlarm(threshold_s=0.5, for_s=10)
    assert alarm.observe(0, 0.6, 0.6) is None  # high, not for long yet
    assert alarm.observe(5, 0.6, 0.7) is None
    raised = alarm.observe(10, 0.6, 0.8)
    assert isinstance(raised, EventLoopLagging) and raised.for_s == 10.6 and alarm.raised
    assert "800 ms" in raised.summary()
    assert alarm.observe(11, 0.9, 0.9) is None  # still lagging: no second alert
    assert alarm.observe(12, 0.3, 0.3) is None  # between half and the threshold: neither
    assert alarm.observe(13, 0.6, 0.6) is None
    assert alarm.observe(14, 0.1, 0.1) is None  # low, not for long yet
    assert alarm.observe(20, 0.3, 0.3) is None  # back into the band: the calm starts over
    assert alarm.observe(21, 0.1, 0.1) is None
    assert alarm.observe(30, 0.1, 0.1) is None
    cleared = alarm.observe(31, 0.0, 0.01)
    assert isinstance(cleared, EventLoopRecovered) and not alarm.raised
    assert alarm.observe(50, 0.0, 0.0) is None


def test_a_lag_that_dips_under_the_threshold_before_it_lasted_does_not_alert() -> None:
    alarm = LagAlarm(threshold_s=0.5, for_s=10)
    for t in range(0, 60, 2):  # high for 8 s, then a dip, over and over
        assert alarm.observe(t, 0.3, 0.4 if t % 10 == 8 else 0.6) is None
    assert not alarm.raised


def test_one_long_stall_alerts_at_once() -> None:
    alarm = LagAlarm(threshold_s=0.5, for_s=30)
    assert alarm.observe(100, 0.0, 0.0) is None
    event = alarm.observe(141, 40.0, 8.0)  # the loop was blocked for 40 s: one late wake-up says so
    assert isinstance(event, EventLoopLagging) and event.for_s >= 30


async def outbox_kinds(db: Database) -> Counter[str]:
    async with db.session() as s:
        return Counter(r.event_type for r in (await s.exec(select(OutboxRow))).all())


async def test_a_blocked_loop_alerts_once_in_chat_recovers_once_and_shows_in_health(sqlite_db: Database) -> None:
    bus = EventBus(outbox=OutboxWriter(NotifySettings(destinations=(
        Destination(name="ops", platform="telegram", target="1"),))))
    health = ComponentHealth()
    watch = LoopLagWatch(LoopLagMonitor(interval_s=0.05), LagAlarm(threshold_s=0.05, for_s=0.3), health,
                         lambda event: bus.announce(sqlite_db, event))
    chat = ChatHarness(build_dispatcher(
        sqlite_db, LeaderBoundService(("BTC/USD",), lambda: None, lambda: None, components=health),
        ChatSettings(**BASE_SETTINGS), clock=ManualClock()), actor=ADMIN)
    await watch.start()
    try:
        await asyncio.sleep(0.2)
        calm = await chat.send("/health")
        assert "event-loop" in calm.text and "ms average" in calm.text and "LAGGING" not in calm.text

        async def blocker() -> None:
            for _ in range(15):  # 1.5 s of a loop blocked 0.1 s at a time
                time.sleep(0.1)  # noqa: ASYNC251 - blocking the loop is what this test is about
                await asyncio.sleep(0.005)

        await blocker()
        await eventually(lambda: _kinds(sqlite_db, "event_loop_lag"), timeout=5, what="the lag alert in the outbox")
        status = health.get(COMPONENT)
        assert status is not None and status.state == "up" and "LAGGING" in status.reason
        lagging = await chat.send("/health")
        assert "LAGGING" in lagging.text
        await eventually(lambda: _kinds(sqlite_db, "event_loop_recovered"), timeout=10,
                         what="the recovered notice in the outbox")
        await asyncio.sleep(0.5)
        kinds = await outbox_kinds(sqlite_db)
        assert kinds["event_loop_lag"] == 1 and kinds["event_loop_recovered"] == 1
        assert "LAGGING" not in (await chat.send("/health")).text
    finally:
        await watch.stop()
    assert health.get(COMPONENT) is None


async def _kinds(db: Database, kind: str) -> bool:
    return (await outbox_kinds(db))[kind] >= 1


def test_the_alert_threshold_is_a_setting() -> None:
    settings = load_settings(env={"TRADECTL_SERVICE__LOOP_LAG_ALERT_MS": "250",
                                  "TRADECTL_SERVICE__LOOP_LAG_ALERT_FOR_S": "5"}, dotenv_path=None)
    assert (settings.service.loop_lag_alert_ms, settings.service.loop_lag_alert_for_s) == (250, 5)
    assert load_settings(env={}, dotenv_path=None).service.loop_lag_alert_ms == 500
