"""Alerts are never lost: outages, restarts, rate limits, bursts and two replicas."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

from bot.notify import OutboxDispatcher, WebhookSender
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import EventBus, PositionClosed
from persistence.db import Database
from tests.fakes.webhook import FakeWebhook


def settings(**kw: object) -> NotifySettings:
    dests = (Destination(name="ops", platform="discord", target=""),
             Destination(name="team", platform="slack", target="", min_severity="warning"))
    return NotifySettings(destinations=dests, **kw)  # type: ignore[arg-type]


def closed(n: int) -> PositionClosed:
    return PositionClosed(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(101),
                          fees=Decimal("0.5"), pnl=Decimal(n), pnl_pct=Decimal(1), reason=f"closed by telegram:{n}")


async def eventually(pred, timeout: float = 20.0, step: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await pred() if asyncio.iscoroutinefunction(pred) else pred():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")


def texts(fake: FakeWebhook, channel: str) -> list[str]:
    """What a reader sees of each message: a Discord embed (its content line repeats the headline) or
    content, or Slack text."""
    out = []
    for m in fake.received[channel]:
        embeds = [f"{e.get('title', '')}\n{e.get('description', '')}" for e in m.get("embeds") or []]
        out.append("\n".join([*embeds] if embeds else [m.get("content") or m.get("text") or ""]))
    return out


def numbers(fake: FakeWebhook, channel: str) -> list[int]:
    return [int(x) for t in texts(fake, channel) for x in re.findall(r"closed by telegram:(\d+)", t)]


async def test_routing_levels_and_severity(db: Database) -> None:
    s = settings(events={"position_closed": "silent", "order_placed": "off"})
    w = OutboxWriter(s)
    rows = w.rows_for(closed(1))
    assert [r.destination for r in rows] == ["ops"]  # "team" wants warning and above
    assert rows[0].silent


async def test_outage_and_restart_lose_nothing_and_keep_order(db: Database) -> None:
    s = settings()
    bus = EventBus(outbox=OutboxWriter(s))
    async with FakeWebhook(burst=100) as fake:
        fake.down = True
        targets = {"ops": fake.channel_url("ops"), "team": fake.channel_url("team")}
        d1 = OutboxDispatcher(db, s, {"discord": WebhookSender("discord"), "slack": WebhookSender("slack")},
                              instance_id="one", targets=targets, poll_s=0.05, base_backoff_s=0.05, lease_ttl_s=2)
        await d1.start()
        for n in range(3):
            await bus.record(db, closed(n))
        await asyncio.sleep(0.5)
        assert fake.received["ops"] == []
        await d1.stop()  # the service restarts during the outage
        for n in range(3, 5):
            await bus.record(db, closed(n))
        fake.down = False
        d2 = OutboxDispatcher(db, s, {"discord": WebhookSender("discord"), "slack": WebhookSender("slack")},
                              instance_id="two", targets=targets, poll_s=0.05, base_backoff_s=0.05, lease_ttl_s=2)
        await d2.start()
        await eventually(lambda: len(numbers(fake, "ops")) >= 5)
        await asyncio.sleep(0.3)
        await d2.stop()
    assert numbers(fake, "ops") == [0, 1, 2, 3, 4]


async def test_burst_of_1000_becomes_readable_digests_with_nothing_dropped(db: Database) -> None:
    s = settings(per_destination_rate=20.0)
    w = OutboxWriter(s)
    async with db.session() as sess:
        for n in range(1000):
            for row in w.rows_for(closed(n)):
                sess.add(row)
    async with FakeWebhook(burst=5, window_s=0.5) as fake:
        d = OutboxDispatcher(db, s, {"discord": WebhookSender("discord")}, instance_id="x",
                             targets={"ops": fake.channel_url("ops")}, poll_s=0.02)
        await d.start()
        await eventually(lambda: len(numbers(fake, "ops")) >= 1000, timeout=60)
        await d.stop()
    got = numbers(fake, "ops")
    assert got == list(range(1000))  # every alert, once, in order
    assert len(fake.received["ops"]) <= 40  # ~30 alerts per 2,000-character Discord message
    assert fake.status_429 >= 0
    assert all(len(t) <= 2000 for t in texts(fake, "ops"))
    assert await d.pending("ops") == 0


async def test_two_replicas_never_deliver_twice(db: Database) -> None:
    s = settings(per_destination_rate=50.0)
    bus = EventBus(outbox=OutboxWriter(s))
    async with FakeWebhook(burst=1000) as fake:
        targets = {"ops": fake.channel_url("ops")}
        ds = [OutboxDispatcher(db, s, {"discord": WebhookSender("discord")}, instance_id=f"r{i}", targets=targets,
                               poll_s=0.01, lease_ttl_s=3) for i in range(2)]
        for d in ds:
            await d.start()
        for n in range(40):
            await bus.record(db, closed(n))
            await asyncio.sleep(0.01)
        await eventually(lambda: len(numbers(fake, "ops")) >= 40)
        await asyncio.sleep(0.3)
        for d in ds:
            await d.stop()
    assert sorted(numbers(fake, "ops")) == list(range(40))
    assert len(numbers(fake, "ops")) == 40


async def test_failing_destination_warns_the_others(db: Database) -> None:
    s = NotifySettings(destinations=(Destination(name="ops", platform="discord"),
                                     Destination(name="team", platform="slack")), failing_warn_after=2)
    bus = EventBus(outbox=OutboxWriter(s))
    async with FakeWebhook(burst=100) as fake:
        targets = {"ops": fake.channel_url("ops"), "team": fake.channel_url("team")}
        d = OutboxDispatcher(db, s, {"discord": WebhookSender("discord"), "slack": WebhookSender("slack")},
                             instance_id="x", targets=targets, poll_s=0.02, base_backoff_s=0.02)
        targets_down = {"ops": fake.channel_url("ops").replace("/hooks/", "/nowhere/")}
        d.targets.update(targets_down)
        await d.start()
        await bus.record(db, closed(1))
        await eventually(lambda: any("failing" in t for t in texts(fake, "team")))
        await d.stop()
