"""Alerts through the Slack Web API (``chat.postMessage``): outages, restarts, 429s and bursts lose nothing."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import pytest
from pydantic import SecretStr

from bot.notify import AlertMessage, DeliveryError, OutboxDispatcher
from bot.platforms.slack import SlackSender, web_client
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings, SlackSettings
from core.trading.events import EventBus, PositionClosed
from persistence.db import Database
from tests.core.waiting import eventually
from tests.fakes.slack import FakeSlack

OPS = "C0OPS00001"


def closed(n: int) -> PositionClosed:
    return PositionClosed(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(101),
                          fees=Decimal("0.5"), pnl=Decimal(n), pnl_pct=Decimal(1), reason=f"closed by telegram:{n}")


def settings(**kw: object) -> NotifySettings:
    team = Destination(name="team", platform="slack", target=OPS)
    return NotifySettings(destinations=(team,), **kw)  # type: ignore[arg-type]


def sender(fake: FakeSlack, token: str | None = None, timeout: float = 1) -> SlackSender:
    s = SlackSettings(bot_token=SecretStr(token or fake.bot_token), api_base=fake.api_base, request_timeout_s=timeout)
    return SlackSender(web_client(s))


def numbers(fake: FakeSlack) -> list[int]:
    return [int(x) for p in fake.channel(OPS) for x in re.findall(r"closed by telegram:(\d+)", p.text)]


@pytest.mark.parametrize("outage", ["5xx", "timeout"])
async def test_outage_and_restart_lose_nothing_and_keep_order(db: Database, outage: str) -> None:
    s = settings()
    bus = EventBus(outbox=OutboxWriter(s))
    async with FakeSlack(post_rate_per_s=100, post_burst=100) as fake:
        fake.down, fake.hang = outage == "5xx", outage == "timeout"

        def dispatcher(name: str) -> OutboxDispatcher:
            return OutboxDispatcher(db, s, {"slack": sender(fake)}, instance_id=name, poll_s=0.05,
                                    base_backoff_s=0.05, lease_ttl_s=1)

        first = dispatcher("one")
        await first.start()
        for n in range(3):
            await bus.record(db, closed(n))
        await eventually(lambda: fake.unavailable >= 2, what="retries during the outage")  # a timeout is 1 s
        assert fake.posted == []
        await first.stop()  # the service restarts during the outage
        for n in range(3, 6):
            await bus.record(db, closed(n))
        fake.down = False
        fake.release()
        second = dispatcher("two")
        await second.start()
        await eventually(lambda: len(numbers(fake)) >= 6, timeout=20)
        await asyncio.sleep(0.3)
        await second.stop()
        assert numbers(fake) == [0, 1, 2, 3, 4, 5]  # every alert, once, in order
        assert await second.pending("team") == 0


async def test_burst_of_1000_under_429s_becomes_readable_digests(db: Database) -> None:
    s = settings(per_destination_rate=30.0)
    writer = OutboxWriter(s)
    async with db.session() as session:
        for n in range(1000):
            for row in writer.rows_for(closed(n)):
                session.add(row)
    # Slack's "about one per second, short bursts", in compressed time; the channel's allowance is used
    # up when the burst starts, so the first messages are answered 429.
    async with FakeSlack(post_rate_per_s=40, post_burst=3) as fake:
        fake.exhaust(OPS)
        d = OutboxDispatcher(db, s, {"slack": sender(fake)}, instance_id="x", poll_s=0.02)
        await d.start()
        await eventually(lambda: len(numbers(fake)) >= 1000, timeout=60)
        await d.stop()
        posts = fake.channel(OPS)
        assert numbers(fake) == list(range(1000))  # zero lost, zero dropped on 429, none twice, in order
        assert fake.status_429 > 0  # the limit was really hit, and the retry handler waited it out
        assert len(posts) <= 40 and all(len(p.text) <= 3000 for p in posts)
        assert re.match(r"^\d+ alerts, UTC:\n\d\d:\d\d • Closed BTC/USD: 0\.00 USD", posts[0].text), posts[0].text
        assert posts[0].blocks[0]["type"] == "header"  # and natively, as blocks


async def test_charts_are_uploaded_and_text_is_escaped() -> None:
    async with FakeSlack() as fake:
        alerts = sender(fake)
        await alerts.send(OPS, AlertMessage("report", "info", ("PnL <b> & more",), False, image=b"\x89PNG-bytes"))
        await alerts.send(OPS, AlertMessage("x", "warning", ("<!channel> look",), False))
        (upload,) = fake.completed_uploads
        assert upload["channel_id"] == OPS and upload["initial_comment"] == "PnL &lt;b&gt; &amp; more"
        assert list(fake.uploads.values()) == [b"\x89PNG-bytes"]
        assert fake.channel(OPS)[0].text == "⚠️ &lt;!channel&gt; look"


async def test_errors_retrying_cannot_fix_are_permanent() -> None:
    async with FakeSlack() as fake:
        with pytest.raises(DeliveryError) as err:
            await sender(fake, token="xoxb-revoked").send(OPS, AlertMessage("x", "info", ("hi",), False))
        assert not err.value.retryable and "invalid_auth" in str(err.value)
        with pytest.raises(DeliveryError) as err:
            await sender(fake).send("X-not-a-channel", AlertMessage("x", "info", ("hi",), False))
        assert not err.value.retryable and "channel_not_found" in str(err.value)
        with pytest.raises(DeliveryError) as err:
            await SlackSender(None).send(OPS, AlertMessage("x", "info", ("hi",), False))
        assert not err.value.retryable and "slack.bot_token" in str(err.value)
        fake.down = True
        with pytest.raises(DeliveryError) as err:
            await sender(fake).send(OPS, AlertMessage("x", "info", ("hi",), False))
        assert err.value.retryable
