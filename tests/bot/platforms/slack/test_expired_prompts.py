"""Slack: a confirmation prompt nobody pressed is replaced, once, through the response_url it was posted
by when it expires — also when it expired while the service was down — and no button remains."""

from __future__ import annotations

from bot.app import build_dispatcher
from bot.platforms.slack import SlackAdapter
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.slack.conftest import CHAT_SETTINGS, OPS, TRADER, slack_settings
from tests.bot.platforms.slack.test_socket_mode import answer
from tests.core.waiting import eventually
from tests.fakes.clock import ManualClock
from tests.fakes.slack import FakeSlack, Posted


def adapter_for(db: Database, fake: FakeSlack, trading: FakeTrading, clock: ManualClock) -> SlackAdapter:
    dispatcher = build_dispatcher(db, trading, ChatSettings(**CHAT_SETTINGS), clock=clock)
    return SlackAdapter(dispatcher, slack_settings(fake), expiry_sweep_s=0.05)


def edits_of(fake: FakeSlack, ask: Posted) -> list[Posted]:
    return [p for p in fake.posted if p.via == ask.via and p.replace_original]


async def test_an_unpressed_prompt_is_replaced_once_when_it_expires(sqlite_db: Database, fake_slack: FakeSlack,
                                                                    trading: FakeTrading) -> None:
    clock = ManualClock()
    adapter = adapter_for(sqlite_db, fake_slack, trading, clock)
    await adapter.start()
    try:
        await eventually(lambda: len(fake_slack.sockets) >= 1, what="socket mode connection")
        await fake_slack.command("close BTC/USD", user=TRADER, channel=OPS)
        ask = await answer(fake_slack, 1)
        assert ask.buttons()
        clock.advance(59)
        assert await adapter.expired_prompts.sweep() == 0 and edits_of(fake_slack, ask) == []
        clock.advance(2)
        await eventually(lambda: edits_of(fake_slack, ask), what="the prompt replaced")
        assert await adapter.expired_prompts.sweep() == 0
        [edit] = edits_of(fake_slack, ask)
        assert edit.buttons() == [] and edit.channel == OPS
        assert "/tradectl close BTC/USD: expired at" in edit.readable()
        assert "nothing was done; send /tradectl close again" in edit.readable()
        assert trading.intents == []
    finally:
        await adapter.stop()


async def test_a_prompt_that_expired_while_the_service_was_down_is_replaced_at_start(
        sqlite_db: Database, fake_slack: FakeSlack, trading: FakeTrading) -> None:
    clock = ManualClock()
    first = adapter_for(sqlite_db, fake_slack, trading, clock)
    await first.start()
    try:
        await eventually(lambda: len(fake_slack.sockets) >= 1, what="socket mode connection")
        await fake_slack.command("close ETH/USD", user=TRADER, channel=OPS)
        ask = await answer(fake_slack, 1)
        assert ask.buttons()
    finally:
        await first.stop()
    clock.advance(600)
    second = adapter_for(sqlite_db, fake_slack, trading, clock)
    await second.start()
    try:
        await eventually(lambda: edits_of(fake_slack, ask), what="the prompt replaced at start")
        assert len(edits_of(fake_slack, ask)) == 1 and edits_of(fake_slack, ask)[0].buttons() == []
    finally:
        await second.stop()
