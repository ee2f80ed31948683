"""Every command Slack shows is one a Slack user can type: ``/tradectl trades``, never ``/trades`` (Slack's own
``/status`` is a built-in). Replies through the adapter and alerts through the sender, against the fake Slack."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import SecretStr

from bot.commands import build_registry
from bot.notify import OutboxDispatcher
from bot.platforms.slack import SlackSender, web_client
from bot.platforms.slack.mentions import SlashCommands, registry_names
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings, SlackSettings
from core.trading.events import EventBus, Killed
from core.trading.intents import ClosedPosition
from core.trading.views import TradeView
from persistence.db import Database
from tests.bot.fake_trading import T0, FakeTrading
from tests.bot.platforms.slack.conftest import OPS, VIEWER, StartSlack
from tests.core.waiting import eventually
from tests.fakes.slack import FakeSlack

SLASH = SlashCommands("/tradectl", registry_names(build_registry()))


@pytest.mark.parametrize(("shown", "expected"), [
    ("Older trades: /trades 10 2", "Older trades: /tradectl trades 10 2"),
    ("send /kill again, then /rearm.", "send /tradectl kill again, then /tradectl rearm."),
    ("(/status)", "(/tradectl status)"),
    ("/status", "/tradectl status"),
    ("BTC/USD", "BTC/USD"),
    ("a/b", "a/b"),
    ("closed BTC/USD and ETH/USD", "closed BTC/USD and ETH/USD"),
    ("http://x/status", "http://x/status"),
    ("see https://example.com/trades?x=/status", "see https://example.com/trades?x=/status"),
    ("/var/lib/status", "/var/lib/status"),
    ("~/status", "~/status"),
    ("./status", "./status"),
    ("/status/x", "/status/x"),
    ("/statusx", "/statusx"),
    ("/status-page", "/status-page"),
    ("/status@otherbot", "/status@otherbot"),
    ("/nosuchcommand", "/nosuchcommand"),
    ("/USD", "/USD"),
    ("/tradectl status", "/tradectl status"),  # already in Slack's words: left alone
])
def test_only_real_mentions_of_registered_commands_change(shown: str, expected: str) -> None:
    assert SLASH.text(shown) == expected


def test_every_block_kind_is_rewritten_and_payloads_are_not() -> None:
    reply = Reply((Text("Paused. /resume when ready"), KeyValues("Next", (("undo", "/resume"), ("pair", "BTC/USD"))),
                   Table("Trades", ("pair",), (("BTC/USD",),), more="Older trades: /trades 10 2"),
                   Image(b"png", "equity; more: /chart 30"), Buttons((Button("/status", "st:1"),))))
    text, kv, table, image, buttons = SLASH.reply(reply).blocks
    assert text == Text("Paused. /tradectl resume when ready")
    assert kv == KeyValues("Next", (("undo", "/tradectl resume"), ("pair", "BTC/USD")))
    assert table.more == "Older trades: /tradectl trades 10 2" and table.rows == (("BTC/USD",),)  # type: ignore[union-attr]
    assert image.caption == "equity; more: /tradectl chart 30"  # type: ignore[union-attr]
    assert buttons == Buttons((Button("/tradectl status", "st:1"),))  # the payload is the dispatcher's, untouched


async def test_next_page_hint_of_trades_names_the_slash_command(start_slack: StartSlack, fake_slack: FakeSlack,
                                                                trading: FakeTrading) -> None:
    for n in range(25):
        trading.closed.append(TradeView(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100),
                                        exit_price=Decimal(101 + n), pnl=Decimal(1 + n), pnl_pct=Decimal(1),
                                        fees=Decimal(0), opened_at=T0, closed_at=T0, exit_reason="stop"))
    await start_slack()
    await fake_slack.command("trades 10", user=VIEWER, channel=OPS)
    await eventually(lambda: fake_slack.posted, what="the /tradectl trades answer")
    shown = "\n".join(p.readable() for p in fake_slack.posted)
    assert "Older trades: /tradectl trades 10 2" in shown and "BTC/USD" in shown
    assert " /trades" not in shown


async def test_alert_on_slack_names_the_slash_command(sqlite_db: Database) -> None:
    notify = NotifySettings(destinations=(Destination(name="team", platform="slack", target=OPS),))
    bus = EventBus(outbox=OutboxWriter(notify))
    async with FakeSlack(post_rate_per_s=50, post_burst=50) as fake:
        client = web_client(SlackSettings(bot_token=SecretStr(fake.bot_token), api_base=fake.api_base))
        outbox = OutboxDispatcher(sqlite_db, notify, {"slack": SlackSender(client)}, instance_id="one", poll_s=0.05)
        await outbox.start()
        try:
            await bus.record(sqlite_db, Killed(by="slack:U0ALICE001", complete=True, closed=(
                ClosedPosition("BTC/USD", Decimal(1), Decimal(101), Decimal(1), Decimal("0.1")),)))
            await eventually(lambda: fake.channel(OPS), what="the kill alert")
        finally:
            await outbox.stop()
    (posted,) = fake.channel(OPS)
    for shown in (posted.text, posted.readable()):  # the notification text and the blocks
        assert "until an admin sends /tradectl rearm" in shown and "/tradectl tradectl" not in shown
        assert "BTC/USD" in shown
    assert " /rearm" not in posted.readable()
