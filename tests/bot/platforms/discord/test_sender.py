"""Alerts through the Discord REST API: outages, restarts, rate limits and bursts lose nothing."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.notify import AlertMessage, DeliveryError, OutboxDispatcher
from bot.notify.formats import Style, from_event
from bot.notify.senders import discord_content
from bot.platforms.discord import DiscordSender
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import EventBus, PositionClosed, StateChanged
from persistence.db import Database
from tests.bot.hostile import assert_discord_inert
from tests.core.waiting import eventually
from tests.fakes.discord import FakeDiscord
from tests.fakes.webhook import FakeWebhook

OPS = "381870553235193857"


def closed(n: int) -> PositionClosed:
    return PositionClosed(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(101),
                          fees=Decimal("0.5"), pnl=Decimal(n), pnl_pct=Decimal(1), reason=f"closed by telegram:{n}")


def settings(**kw: object) -> NotifySettings:
    ops = Destination(name="ops", platform="discord", target=OPS)
    return NotifySettings(destinations=(ops,), **kw)  # type: ignore[arg-type]


def shown(message: dict[str, Any]) -> str:
    """What a reader sees of a message: its content and its embeds' titles and descriptions."""
    embeds = [f"{e.get('title', '')}\n{e.get('description', '')}" for e in message.get("embeds") or []]
    return "\n".join(x for x in [message.get("content") or "", *embeds] if x)


def embedded(message: dict[str, Any]) -> str:
    """The embeds' titles and descriptions (the content line of an embed alert repeats its headline)."""
    return "\n".join(f"{e.get('title', '')}\n{e.get('description', '')}" for e in message.get("embeds") or [])


def numbers(fake: FakeDiscord, channel: str = OPS) -> list[int]:
    return [int(x) for m in fake.channel_posts[channel] for x in re.findall(r"closed by telegram:(\d+)", embedded(m))]


def sender(fake: FakeDiscord, timeout: float = 5.0) -> DiscordSender:
    return DiscordSender(fake.token, api_base=fake.api_base, timeout=timeout)


def dispatcher(db: Database, s: NotifySettings, fake: FakeDiscord, name: str, **kw: object) -> OutboxDispatcher:
    return OutboxDispatcher(db, s, {"discord": sender(fake, timeout=0.5)}, instance_id=name, poll_s=0.05,
                            base_backoff_s=0.05, lease_ttl_s=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("outage", ["5xx", "timeout"])
async def test_outage_and_restart_lose_nothing_and_keep_order(db: Database, outage: str) -> None:
    s = settings()
    bus = EventBus(outbox=OutboxWriter(s))
    async with FakeDiscord(channel_limit=100) as fake:
        fake.down, fake.hang = outage == "5xx", outage == "timeout"
        first = dispatcher(db, s, fake, "one")
        await first.start()
        for n in range(3):
            await bus.record(db, closed(n))
        await eventually(lambda: fake.unavailable >= 3, what="retries during the outage")  # a timeout is 0.5 s
        assert fake.channel_posts[OPS] == []
        await first.stop()  # the service restarts during the outage
        for n in range(3, 6):
            await bus.record(db, closed(n))
        fake.down = False
        fake.release()
        second = dispatcher(db, s, fake, "two")
        await second.start()
        await eventually(lambda: len(numbers(fake)) >= 6, timeout=20)
        await asyncio.sleep(0.3)
        await second.stop()
        assert numbers(fake) == [0, 1, 2, 3, 4, 5]  # every alert, once, in order
        assert await second.pending("ops") == 0


async def test_burst_of_1000_becomes_readable_digests_without_a_429(db: Database) -> None:
    s = settings(per_destination_rate=50.0)
    writer = OutboxWriter(s)
    async with db.session() as session:
        for n in range(1000):
            for row in writer.rows_for(closed(n)):
                session.add(row)
    async with FakeDiscord(channel_limit=5, channel_window_s=0.25) as fake:
        alerts = sender(fake)
        d = OutboxDispatcher(db, s, {"discord": alerts}, instance_id="x", poll_s=0.02)
        await d.start()
        await eventually(lambda: len(numbers(fake)) >= 1000, timeout=60)
        await d.stop()
        posts = fake.channel_posts[OPS]
        assert numbers(fake) == list(range(1000))  # zero lost, none twice, in order
        assert len(posts) <= 40 and all(len(shown(p)) <= 2000 for p in posts)
        # a readable digest: one embed, a line per alert with its time and severity mark
        assert re.match(r"^\d+ alerts, UTC\n\d\d:\d\d • Closed BTC/USD: 0\.00 USD",
                        embedded(posts[0])), embedded(posts[0])
        # the sender read X-RateLimit-Remaining/Reset-After and waited instead of being refused
        assert fake.status_429 == 0 and alerts.rate_limited == 0
        assert all(p["flags"] in (0, 4096) and p["embeds"] for p in posts)  # embeds (no link previews), maybe silent


async def test_a_429_hands_retry_after_back_to_the_dispatcher() -> None:
    async with FakeDiscord(channel_limit=1, channel_window_s=2.0) as fake:
        async with httpx.AsyncClient() as other:  # someone else (another process) used the bucket up
            await other.post(f"{fake.api_base}/channels/{OPS}/messages", json={"content": "x"},
                             headers={"Authorization": f"Bot {fake.token}"})
        alerts = sender(fake)
        with pytest.raises(DeliveryError) as err:
            await alerts.send(OPS, AlertMessage("x", "info", ("hello",), False))
        assert err.value.retry_after is not None and 0 < err.value.retry_after <= 2.0
        assert err.value.retryable and fake.status_429 == 1
        await alerts.aclose()


async def test_message_shape_silence_mentions_and_charts() -> None:
    async with FakeDiscord() as fake:
        alerts = sender(fake)
        await alerts.send(OPS, AlertMessage("order_filled", "info", ("filled @everyone",), silent=True))
        await alerts.send(OPS, AlertMessage("report", "info", ("daily report",), False, image=b"\x89PNG-bytes"))
        quiet, report = fake.channel_posts[OPS]
        assert quiet["flags"] == 4096 | 4  # SUPPRESS_NOTIFICATIONS, SUPPRESS_EMBEDS
        assert quiet["content"] == "filled @\u200beveryone"  # reads as typed; allowed_mentions stops any ping
        assert fake.channel_bodies[OPS][0]["allowed_mentions"] == {"parse": []} and not quiet["mention_everyone"]
        assert report["content"] == "daily report" and report["attachments"][0]["filename"] == "chart.png"
        await alerts.aclose()


async def test_errors_retrying_cannot_fix_are_permanent() -> None:
    async with FakeDiscord() as fake:
        wrong = DiscordSender("not-the-token", api_base=fake.api_base)
        with pytest.raises(DeliveryError) as err:
            await wrong.send(OPS, AlertMessage("x", "info", ("hello",), False))
        assert not err.value.retryable
        no_token = DiscordSender(None, api_base=fake.api_base)
        with pytest.raises(DeliveryError) as err:
            await no_token.send(OPS, AlertMessage("x", "info", ("hello",), False))
        assert not err.value.retryable and "discord.token" in str(err.value)
        for s in (wrong, no_token):
            await s.aclose()


HOSTILE = "@everyone @here <@&123456789012345678> <@123456789012345678> see https://evil.example/login"


async def test_an_embed_alert_has_a_plain_content_line_for_the_push_notification() -> None:
    """A phone's notification shows a message's content, not its embed: the content is the alert's
    headline with its severity mark, and pings nobody however hostile the alert's text."""
    alert = from_event(StateChanged(state="paused", previous="running", by="telegram:1", reason=HOSTILE), Style())
    message = AlertMessage(alert.kind, alert.severity, alert.text_lines(), False, alerts=(alert,))
    async with FakeDiscord() as fake, FakeWebhook() as hook:
        alerts = sender(fake)
        await alerts.send(OPS, message)
        await alerts.send(hook.channel_url("ops"), message)  # a Discord incoming webhook as the target
        (post,) = fake.channel_posts[OPS]
        (body,) = fake.channel_bodies[OPS]
        (hooked,) = hook.received["ops"]
        await alerts.aclose()
    content = post["content"]
    assert content.startswith("• ⏸ Entries paused by telegram:1: reason: ")  # the mark of its severity, info
    assert post["embeds"][0]["title"] == "⏸ Entries paused by telegram:1"
    assert_discord_inert(content, "content")
    assert "@\u200beveryone @\u200bhere \\<@&123456789012345678>" in content  # reads as typed
    assert "https\\://evil.example/login" in content  # an address, not a link with a preview card
    assert not post["mention_everyone"] and post["mention_roles"] == [] and post["mentions"] == []
    assert body["allowed_mentions"] == {"parse": []} and not body.get("flags")  # flags would hide the embed
    assert hooked["content"] == content and hooked["allowed_mentions"] == {"parse": []} and hooked["embeds"]
    digest = AlertMessage("digest", "warning", (alert.one_line(), alert.one_line()), False, digest=True,
                          alerts=(alert, alert))
    assert discord_content(digest).startswith("⚠️ 2 alerts: ⏸ Entries paused by telegram:1")
