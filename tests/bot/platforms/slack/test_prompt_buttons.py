"""Slack: used confirmation buttons go away whatever the outcome (the message's blocks are replaced
through its response_url), refusals are ephemeral, and texts name the configured slash command."""

from __future__ import annotations

from bot.app import build_dispatcher
from bot.platforms.slack import SlackAdapter
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.slack.conftest import CHAT_SETTINGS, OPS, TRADER, StartSlack, slack_settings
from tests.bot.platforms.slack.test_socket_mode import answer
from tests.core.waiting import eventually
from tests.fakes.clock import ManualClock
from tests.fakes.slack import FakeSlack


async def test_an_expired_prompt_loses_its_buttons_and_keeps_its_question(sqlite_db: Database, fake_slack: FakeSlack,
                                                                          trading: FakeTrading) -> None:
    clock = ManualClock()
    dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=clock)
    adapter = SlackAdapter(dispatcher, slack_settings(fake_slack))
    await adapter.start()
    try:
        await eventually(lambda: len(fake_slack.sockets) >= 1, what="socket mode connection")
        await fake_slack.command("close BTC/USD", user=TRADER, channel=OPS)
        ask = await answer(fake_slack, 1)
        assert "Confirm /tradectl close BTC/USD" in ask.readable()
        clock.advance(61)
        await fake_slack.press(ask, "Close BTC/USD", user=TRADER)
        replaced = await answer(fake_slack, 2)
        assert replaced.replace_original and replaced.buttons() == []
        assert "Closes BTC/USD 0.5" in replaced.readable() and "expired" in replaced.readable()
        refusal = await answer(fake_slack, 3)
        assert refusal.ephemeral and not refusal.replace_original and "expired" in refusal.readable()
        assert trading.intents == []
    finally:
        await adapter.stop()


async def test_a_cancel_press_replaces_the_prompt_without_buttons(start_slack: StartSlack, fake_slack: FakeSlack,
                                                                 trading: FakeTrading) -> None:
    await start_slack()
    await fake_slack.command("close BTC/USD", user=TRADER, channel=OPS)
    ask = await answer(fake_slack, 1)
    assert [b["text"]["text"] for b in ask.buttons()] == ["Close BTC/USD", "Cancel"]
    await fake_slack.press(ask, "Cancel", user=TRADER)
    cancelled = await answer(fake_slack, 2)
    assert cancelled.replace_original and cancelled.buttons() == []
    assert "Cancelled /tradectl close" in cancelled.readable()
    assert trading.intents == [] and "BTC/USD" in trading.open


async def test_a_confirmed_command_that_fails_loses_its_buttons(start_slack: StartSlack, fake_slack: FakeSlack,
                                                                trading: FakeTrading) -> None:
    await start_slack()
    await fake_slack.command("close BTC/USD", user=TRADER, channel=OPS)
    ask = await answer(fake_slack, 1)
    trading.open.pop("BTC/USD")  # closed by a stop meanwhile: the confirmed command fails
    await fake_slack.press(ask, "Close BTC/USD", user=TRADER)
    failed = await answer(fake_slack, 2)
    assert failed.replace_original and failed.buttons() == []  # the prompt's buttons are gone
    assert "no open position in BTC/USD" in failed.readable()
