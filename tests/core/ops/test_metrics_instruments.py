"""The series pushed where things happen: chat commands through the real dispatcher (scraped over HTTP from
the metrics listener that shares their registry), a live venue built by the composition root's factory
against the fake Kraken server, the scheduler's runs and misses, and the outbox's deliveries to a fake
webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from prometheus_client import generate_latest

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.notify import OutboxDispatcher, WebhookSender
from core.app.live import build_live_exchange
from core.app.standby import LeaderBoundService
from core.ops.instruments import Instruments
from core.ops.loop_lag import LoopLagMonitor
from core.ops.metrics import MetricsServer, _trading
from core.ops.outbox import OutboxWriter
from core.ops.scheduler import JobResult, JobRun
from core.settings.config import load_settings
from core.settings.settings_models import ChatSettings, Destination, MetricsSettings, NotifySettings
from core.trading import EventBus
from core.trading.state import RUNNING
from core.trading.views import StatusView
from exchanges.clock import SimClock
from persistence.db import Database
from tests.bot.conftest import ADMIN, ADMIN2, BASE_SETTINGS, GROUP, STRANGER, TRADER, VIEWER
from tests.bot.fake_trading import FakeTrading
from tests.bot.notify.test_dispatcher import closed
from tests.core.ops.test_metrics import Samples, parse, value
from tests.core.ops.test_scheduler import berlin, make, schedule
from tests.core.waiting import eventually
from tests.exchanges.fakes import FakeKraken
from tests.fakes.clock import ManualClock
from tests.fakes.webhook import FakeWebhook


@pytest.fixture
async def served(sqlite_db: Database) -> AsyncIterator[tuple[Instruments, httpx.AsyncClient]]:
    """Instruments as the wiring builds them, served by a metrics listener of their own."""
    instruments = Instruments()
    server = MetricsServer(MetricsSettings(enabled=True, port=0), sqlite_db, events=EventBus(),
                           service=LeaderBoundService(("BTC/USD",), lambda: None, lambda: None), epoch=lambda: None,
                           loop_lag=LoopLagMonitor(), group="default", venue="paper", instruments=instruments)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            yield instruments, client
    finally:
        await server.stop()


async def scrape(client: httpx.AsyncClient) -> Samples:
    res = await client.get("/metrics")
    assert res.status_code == 200
    return parse(res.text)


async def test_command_attempts_count_by_decision_through_the_real_dispatcher(
        sqlite_db: Database, served: tuple[Instruments, httpx.AsyncClient]) -> None:
    instruments, client = served
    fake = FakeTrading()
    fake.add_positions("BTC/USD")
    settings = ChatSettings(**{**BASE_SETTINGS, "rate_limit_per_minute": 3})
    h = ChatHarness(build_dispatcher(sqlite_db, fake, settings, clock=ManualClock(), observer=instruments),
                    actor=ADMIN)
    before = await scrape(client)
    assert value(before, "tradectl_command_attempts_total") == 0
    assert value(before, "tradectl_confirmations_total", outcome="requested") == 0

    await h.send("/status")
    await h.send("/kill", as_=VIEWER)  # a viewer may not
    await h.send("/status", as_=STRANGER)  # not allowlisted
    await h.send("/frobnicate secret-text")  # unknown: counted without its name
    for _ in range(4):  # the fourth is over the limit of 3 a minute
        await h.send("/balance", as_=TRADER)
    asked = await h.send("/close BTC/USD")
    await h.press(asked.confirm_payload)

    now = await scrape(client)
    assert value(now, "tradectl_command_attempts_total", command="status", decision="allowed") == 1
    assert value(now, "tradectl_command_attempts_total", command="kill", decision="denied") == 1
    assert value(now, "tradectl_command_attempts_total", command="status", decision="denied") == 1
    assert value(now, "tradectl_command_attempts_total", command="unknown", decision="unknown") == 1
    assert value(now, "tradectl_command_attempts_total", command="balance", decision="allowed") == 3
    assert value(now, "tradectl_command_attempts_total", command="balance", decision="rate_limited") == 1
    assert value(now, "tradectl_command_attempts_total", command="close", decision="allowed") == 1  # the question
    assert value(now, "tradectl_command_attempts_total", command="close", decision="confirmed") == 1
    assert value(now, "tradectl_confirmations_total", outcome="requested") == 1
    assert value(now, "tradectl_confirmations_total", outcome="confirmed") == 1
    assert fake.submitted() == ["ClosePosition"]
    labels = {dict(ls).get("command") for (n, ls) in now if n == "tradectl_command_attempts_total"}
    assert "frobnicate" not in labels and None not in labels  # never free text as a label
    assert value(now, "tradectl_command_dispatch_seconds_count", command="status") == 2
    assert value(now, "tradectl_command_dispatch_seconds_count", command="close") == 1
    assert value(now, "tradectl_command_dispatch_seconds_count", command="button") == 1  # the confirming press
    assert value(now, "tradectl_command_dispatch_seconds_sum") > 0


async def test_a_live_venues_requests_retries_and_rate_limit_waits_are_counted(tmp_path: object) -> None:
    instruments = Instruments()
    async with FakeKraken() as fake:
        settings = load_settings(env={
            "TRADECTL_TRADING__MODE": "live", "TRADECTL_TRADING__VENUE": "kraken",
            "TRADECTL_KRAKEN__API_KEY": fake.api_key, "TRADECTL_KRAKEN__API_SECRET": fake.api_secret,
            "TRADECTL_KRAKEN__REST_URL": fake.rest_url, "TRADECTL_KRAKEN__WS_URL": fake.ws_url,
        }, dotenv_path=None)
        venue = build_live_exchange(settings, db=None, instruments=instruments)
        fake.inject("AssetPairs", "http429", retry_after=0.05)
        try:
            assert await venue.markets()  # answered after one retry
        finally:
            await venue.stop()
    got = parse(generate_latest(instruments.registry).decode())
    assert value(got, "tradectl_venue_requests_total", host="127.0.0.1", outcome="http_429") == 1
    assert value(got, "tradectl_venue_requests_total", host="127.0.0.1", outcome="ok") >= 1
    assert value(got, "tradectl_venue_request_seconds_count", host="127.0.0.1") >= 2
    assert value(got, "tradectl_venue_retries_total", error="RateLimited") == 1
    assert value(got, "tradectl_rate_limit_wait_seconds_total") >= 0.05


async def test_scheduler_runs_and_misses_are_counted(db: Database) -> None:
    instruments = Instruments()
    clock = SimClock(berlin(2024, 5, 2, 8, 0, 2))

    async def report(run: JobRun) -> JobResult:
        return JobResult(detail="ok")

    async def broken(run: JobRun) -> JobResult:
        raise RuntimeError("venue unreachable")

    sched = make(db, schedule(daily_report_at="08:00", weekly_report="thu 08:00"),
                 {"daily_report": report, "weekly_report": broken}, clock, observer=instruments)
    assert {o for *_, o in await sched.tick()} == {"finished", "failed"}
    await sched.on_elected(1)
    clock.advance(timedelta(hours=3))  # the timer fires far beyond the 5 minutes of grace
    await sched._fire("daily_report", 1)
    await sched.on_lost()
    got = parse(generate_latest(instruments.registry).decode())
    assert value(got, "tradectl_scheduler_job_runs_total", job="daily_report", outcome="finished") == 1
    assert value(got, "tradectl_scheduler_job_runs_total", job="weekly_report", outcome="failed") == 1
    assert value(got, "tradectl_scheduler_job_seconds_count", job="daily_report") == 1
    assert value(got, "tradectl_scheduler_job_misses_total", job="daily_report") == 1


async def test_outbox_delivery_latency_per_destination_counts_this_replicas_deliveries(sqlite_db: Database) -> None:
    notify = NotifySettings(destinations=(Destination(name="ops", platform="discord", target=""),))
    bus = EventBus(outbox=OutboxWriter(notify))
    server = MetricsServer(MetricsSettings(enabled=True, port=0), sqlite_db, events=EventBus(),
                           service=LeaderBoundService(("BTC/USD",), lambda: None, lambda: None), epoch=lambda: None,
                           loop_lag=LoopLagMonitor(), group="default", venue="paper", destinations=("ops",),
                           instance_id="one")
    async with FakeWebhook(burst=100) as fake:
        outbox = OutboxDispatcher(sqlite_db, notify, {"discord": WebhookSender("discord")}, instance_id="one",
                                  targets={"ops": fake.channel_url("ops")}, poll_s=0.05, base_backoff_s=0.05)
        await server.start()
        await outbox.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
                assert value(await scrape(client), "tradectl_outbox_delivery_seconds_count", destination="ops") == 0
                for n in range(2):
                    await bus.record(sqlite_db, closed(n))
                await eventually(lambda: len(fake.received["ops"]) == 2, timeout=10, what="two alerts delivered")

                async def timed() -> bool:
                    got = await scrape(client)
                    return value(got, "tradectl_outbox_delivery_seconds_count", destination="ops") == 2

                await eventually(timed, timeout=10, what="both deliveries in the latency histogram")
                again = await scrape(client)  # a delivery is observed once, not at every scrape
                assert value(again, "tradectl_outbox_delivery_seconds_count", destination="ops") == 2
                assert value(again, "tradectl_outbox_delivery_seconds_sum", destination="ops") > 0
        finally:
            await outbox.stop()
            await server.stop()


def test_a_pair_older_than_the_stale_data_limit_is_stale() -> None:
    view = StatusView(state=RUNNING, state_reason="", state_changed_by="", state_changed_at=None,
                      mode="live", venue="kraken", quote="USD", equity=Decimal(100), cash=Decimal(100), positions=(),
                      today_pnl=Decimal(0), data_age_s={"BTC/USD": 7300.0, "ETH/USD": 100.0, "SOL/USD": None},
                      leader=None, instance_id="a", uptime_s=1.0, open_orders=0)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in _trading(view, "default", stale_after_s=7260) for s in family.samples}
    assert samples[("tradectl_market_data_stale", (("pair", "BTC/USD"),))] == 1
    assert samples[("tradectl_market_data_stale", (("pair", "ETH/USD"),))] == 0
    assert samples[("tradectl_market_data_stale", (("pair", "SOL/USD"),))] == 0  # no data yet is not stale data
    assert samples[("tradectl_market_data_stale_after_seconds", ())] == 7260
    unwatched = {f.name for f in _trading(view, "default")}
    assert "tradectl_market_data_stale" not in unwatched


async def test_a_confirmation_refused_because_the_requester_lost_the_right_is_counted_as_refused(
        sqlite_db: Database, served: tuple[Instruments, httpx.AsyncClient]) -> None:
    """The second admin of a two-person /kill presses after the requester's admin role was revoked: nothing
    runs, and the prompt is closed as refused, not as if the requester had cancelled it."""
    from bot.identity import Actor

    instruments, client = served
    fake = FakeTrading()
    settings = ChatSettings(**{**BASE_SETTINGS, "two_person_commands": ("kill",)})
    h = ChatHarness(build_dispatcher(sqlite_db, fake, settings, clock=ManualClock(), observer=instruments),
                    actor=ADMIN)
    temp = Actor("telegram", "71")
    await h.send("/grant 71 admin")
    asked = await h.send("/kill", as_=temp, chat=GROUP)
    await h.send("/revoke 71")
    refused = await h.press(asked.confirm_payload, as_=ADMIN2, chat=GROUP)
    assert "no longer allowed" in refused.text
    assert fake.submitted() == []
    again = await h.press(asked.confirm_payload, as_=ADMIN2, chat=GROUP)
    assert "already used (refused)" in again.text

    now = await scrape(client)
    assert value(now, "tradectl_confirmations_total", outcome="refused") == 1
    assert value(now, "tradectl_confirmations_total", outcome="cancelled") == 0


async def test_an_alert_held_back_by_a_429_counts_its_wait_under_the_platform(sqlite_db: Database) -> None:
    notify = NotifySettings(destinations=(Destination(name="ops", platform="discord", target=""),))
    bus = EventBus(outbox=OutboxWriter(notify))
    instruments = Instruments()
    async with FakeWebhook(burst=1, window_s=1.0) as fake:
        outbox = OutboxDispatcher(sqlite_db, notify, {"discord": WebhookSender("discord")}, instance_id="one",
                                  targets={"ops": fake.channel_url("ops")}, poll_s=0.05, base_backoff_s=0.05,
                                  pacing=instruments)
        await outbox.start()
        try:
            await bus.record(sqlite_db, closed(0))
            await eventually(lambda: len(fake.received["ops"]) == 1, timeout=10, what="the first alert")
            await bus.record(sqlite_db, closed(1))  # over the channel's limit of one a second: a 429
            await eventually(lambda: len(fake.received["ops"]) == 2, timeout=10, what="the second, after its wait")
        finally:
            await outbox.stop()
    got = parse(generate_latest(instruments.registry).decode())
    assert fake.status_429 >= 1
    assert value(got, "tradectl_chat_send_wait_seconds_total", platform="discord", reason="retry_after") > 0.3
