"""The Slack adapter in Socket Mode, end to end: slack-bolt and slack_sdk's Socket Mode client against a fake
Slack (``apps.connections.open``, the WebSocket, ``response_url``) on loopback."""

from __future__ import annotations

import asyncio
import linecache

from core.trading.intents import ClosePosition, PauseEntries
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.slack.conftest import (
    ADMIN,
    ADMIN2,
    DM,
    OPS,
    OTHER_CHANNEL,
    OTHER_TEAM,
    STRANGER,
    TRADER,
    VIEWER,
    StartSlack,
)
from tests.core.waiting import eventually
from tests.fakes.slack import FakeSlack, Posted


async def answer(fake: FakeSlack, n: int) -> Posted:
    """The ``n``-th message the app produced (1-based), once it exists."""
    await eventually(lambda: len(fake.posted) >= n, what=f"answer #{n}")
    return fake.posted[n - 1]


async def test_command_is_acked_at_once_and_answered_later(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    class SlowTrading(FakeTrading):
        async def status(self):  # type: ignore[no-untyped-def]
            await asyncio.sleep(1.0)
            return await super().status()

    slow = SlowTrading()
    slow.add_positions("BTC/USD")
    await start_slack(services=slow)
    _, seconds = await fake_slack.command("status", user=VIEWER, channel=OPS)
    assert seconds < 0.5, "Slack needs the ack within 3 s, whatever the command takes"
    assert fake_slack.posted == []
    status = await answer(fake_slack, 1)
    assert status.response_type == "in_channel" and status.channel == OPS
    assert "🟢 Running · equity" in status.readable() and "Open positions" in status.readable()


async def test_confirm_pressed_by_another_user_is_refused(start_slack: StartSlack, fake_slack: FakeSlack,
                                                          trading: FakeTrading) -> None:
    await start_slack()
    await fake_slack.command("close BTC/USD", user=TRADER, channel=OPS)
    ask = await answer(fake_slack, 1)
    confirm, cancel = ask.buttons()
    assert confirm["style"] == "danger" and confirm["confirm"]["title"]["text"] == "Are you sure?"
    assert confirm["value"].startswith("cf:") and confirm["action_id"] != cancel["action_id"]

    await fake_slack.press(ask, "Close BTC/USD", user=ADMIN)
    refused = await answer(fake_slack, 2)
    assert refused.ephemeral and not refused.replace_original  # only the presser sees it; buttons stay
    assert "Only the person who asked can confirm this" in refused.readable()
    assert trading.intents == []

    await fake_slack.press(ask, "Close BTC/USD", user=TRADER)
    done = await answer(fake_slack, 3)
    assert done.replace_original and done.buttons() == []  # the used buttons are replaced by the result
    assert "Closed 1 position" in done.readable()
    assert trading.intents == [ClosePosition(requested_by=f"slack:{TRADER}", pair="BTC/USD")]

    await fake_slack.press(ask, "Close BTC/USD", user=TRADER)  # a stale copy of the message, pressed again
    again = await answer(fake_slack, 4)
    assert "already used" in again.readable() and len(trading.intents) == 1


async def test_roles_and_allowlists(start_slack: StartSlack, fake_slack: FakeSlack, trading: FakeTrading) -> None:
    await start_slack()
    await fake_slack.command("close BTC/USD", user=VIEWER, channel=OPS)
    refused = await answer(fake_slack, 1)
    assert "/tradectl close needs the trader role; you are viewer" in refused.readable()
    assert refused.ephemeral  # a refusal is for the person who asked, not the whole channel
    await fake_slack.command("status", user=STRANGER, channel=OPS)
    stranger = await answer(fake_slack, 2)
    assert "Not authorized" in stranger.readable() and stranger.ephemeral
    await fake_slack.command("status", user=ADMIN, channel=OTHER_CHANNEL)
    assert "Not authorized" in (await answer(fake_slack, 3)).readable()  # chat.allowed_chats.slack
    await fake_slack.command("kill", user=ADMIN, channel=OPS, team=OTHER_TEAM)
    other = await answer(fake_slack, 4)
    assert other.ephemeral and "workspace is not allowed" in other.readable()
    assert trading.intents == []


async def test_direct_message_is_a_private_chat(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    await start_slack()
    await fake_slack.command("", user=ADMIN, channel=DM)  # "/tradectl" alone shows the help
    help_text = (await answer(fake_slack, 1)).readable()
    assert "/tradectl status" in help_text and "\n/status" not in help_text  # /status alone is Slack's own
    await fake_slack.command("whoami", user=ADMIN, channel=DM)
    assert ADMIN in (await answer(fake_slack, 2)).readable()


async def test_names_slack_sends_are_shown_beside_the_id(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    await start_slack()
    whoami = fake_slack.command_payload("whoami", user=ADMIN, channel=OPS)
    await fake_slack.push("slash_commands", {**whoami, "user_name": "alice"})
    assert "alice" in (await answer(fake_slack, 1)).readable()
    await fake_slack.command("close BTC/USD", user=TRADER, channel=OPS)  # user_name u0bob00001
    press = fake_slack.action_payload(await answer(fake_slack, 2), "Close BTC/USD", user=TRADER)
    await fake_slack.push("interactive", {**press, "user": {**press["user"], "username": "bob"}})
    await answer(fake_slack, 3)
    await fake_slack.command("roles", user=ADMIN, channel=OPS)
    roles = (await answer(fake_slack, 4)).readable()
    assert f"bob (slack:{TRADER})" in roles  # the name from the press, the latest seen
    assert f"u0alice001 (slack:{ADMIN})" in roles  # this command's user_name: the latest seen


async def test_redelivered_envelope_runs_once(start_slack: StartSlack, fake_slack: FakeSlack,
                                              trading: FakeTrading) -> None:
    await start_slack()
    payload = fake_slack.command_payload("pause maintenance", user=TRADER, channel=OPS)
    await fake_slack.push("slash_commands", payload)
    await fake_slack.push("slash_commands", payload)  # Slack retries when it believes the ack was lost
    await answer(fake_slack, 1)
    await asyncio.sleep(0.3)
    assert trading.intents == [PauseEntries(requested_by=f"slack:{TRADER}", reason="maintenance")]
    assert len(fake_slack.posted) == 1


async def test_two_replicas_share_confirmations_through_the_database(start_slack: StartSlack, fake_slack: FakeSlack,
                                                                     trading: FakeTrading) -> None:
    await start_slack()
    await start_slack()
    assert len(fake_slack.sockets) == 2
    await fake_slack.command("kill", user=ADMIN, channel=OPS, via=0)
    ask = await answer(fake_slack, 1)
    await fake_slack.press(ask, "🛑 Kill now", user=ADMIN2, via=1)  # Slack picked the other replica
    assert "Only the person who asked" in (await answer(fake_slack, 2)).readable()
    await fake_slack.press(ask, "🛑 Kill now", user=ADMIN, via=1)
    await answer(fake_slack, 3)
    assert [type(i).__name__ for i in trading.intents] == ["Kill"]


async def test_starting_reads_no_source_files(start_slack: StartSlack) -> None:
    """An unnamed bolt app takes its name from ``inspect.stack()``, which reads the source of every calling
    module into memory (~1 MB on the service's stack) for one file name."""
    linecache.clearcache()
    await start_slack()
    assert [name for name in linecache.cache if "slack_bolt" in name] == []
