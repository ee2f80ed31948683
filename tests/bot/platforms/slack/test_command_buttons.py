"""Slack: a command button (``run:``) is pressed like any other and runs its command as the presser:
``/tradectl close`` without a pair offers one per position, and a long list carries a More button."""

from __future__ import annotations

from tests.bot.fake_trading import FakeTrading
from tests.bot.phone_fixture import PhoneTrading
from tests.bot.platforms.slack.conftest import OPS, TRADER, VIEWER, StartSlack
from tests.bot.platforms.slack.test_socket_mode import answer
from tests.fakes.slack import FakeSlack


async def test_a_close_button_asks_to_confirm_and_the_list_keeps_its_buttons(
        start_slack: StartSlack, fake_slack: FakeSlack, trading: FakeTrading) -> None:
    await start_slack()
    await fake_slack.command("close", user=TRADER, channel=OPS)
    listed = await answer(fake_slack, 1)
    assert [(b["text"]["text"], b["value"]) for b in listed.buttons()] == [
        ("BTC/USD", "run:close BTC/USD"), ("ETH/USD", "run:close ETH/USD")]
    assert trading.intents == []  # only listed
    await fake_slack.press(listed, "ETH/USD", user=TRADER)
    asked = await answer(fake_slack, 2)
    assert "Confirm /tradectl close ETH/USD" in asked.readable() and not asked.replace_original
    assert [b["text"]["text"] for b in asked.buttons()] == ["Close ETH/USD", "Cancel"]
    assert trading.intents == []  # asked, not closed
    assert len(fake_slack.posted) == 2  # the list was not replaced: its buttons stay for another pair


async def test_a_command_button_runs_as_the_presser(start_slack: StartSlack, fake_slack: FakeSlack,
                                                    trading: FakeTrading) -> None:
    await start_slack()
    await fake_slack.command("close", user=TRADER, channel=OPS)
    listed = await answer(fake_slack, 1)
    await fake_slack.press(listed, "BTC/USD", user=VIEWER)
    refused = await answer(fake_slack, 2)
    assert "needs the trader role" in refused.readable() and refused.ephemeral and refused.buttons() == []
    assert trading.intents == []


async def test_more_shows_the_next_page(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    await start_slack(services=PhoneTrading())
    await fake_slack.command("trades 10", user=VIEWER, channel=OPS)
    first = await answer(fake_slack, 1)
    assert "/tradectl trades 10 2" in first.readable()
    assert [(b["text"]["text"], b["value"]) for b in first.buttons()] == [("More", "run:trades 10 2")]
    await fake_slack.press(first, "More", user=VIEWER)
    second = await answer(fake_slack, 2)
    assert "Closed trades 11-20" in second.readable() and not second.replace_original
    assert [b["value"] for b in second.buttons()] == ["run:trades 10 3"]
