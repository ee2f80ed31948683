"""Discord: a confirmation prompt nobody pressed is edited by the bot, once, when it expires — also when
it expired while the service was down — and keeps no button: discord.py against the fake Discord."""

from __future__ import annotations

import asyncio

from bot.app import build_dispatcher
from bot.platforms.discord import DiscordGateway
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.discord.conftest import CHAT_SETTINGS, TRADER, discord_settings
from tests.bot.platforms.discord.test_gateway import slash
from tests.core.waiting import eventually
from tests.fakes.clock import ManualClock
from tests.fakes.discord import FakeDiscord


async def started(db: Database, fake: FakeDiscord, trading: FakeTrading, clock: ManualClock) -> DiscordGateway:
    dispatcher = build_dispatcher(db, trading, ChatSettings(**CHAT_SETTINGS), clock=clock)
    gateway = DiscordGateway(dispatcher, discord_settings(fake), expiry_sweep_s=0.05)
    await gateway.start(1)
    await asyncio.wait_for(gateway.connected.wait(), 10)
    return gateway


def edits_of(fake: FakeDiscord, message_id: str | None) -> list[dict[str, object]]:
    return [body for _, mid, body in fake.channel_edits if mid == message_id]


async def test_an_unpressed_prompt_is_edited_once_when_it_expires(sqlite_db: Database, fake_discord: FakeDiscord,
                                                                  trading: FakeTrading) -> None:
    clock = ManualClock()
    gateway = await started(sqlite_db, fake_discord, trading, clock)
    try:
        ask = await slash(fake_discord, "close", {"pair": "BTC/USD"}, user=TRADER)
        assert fake_discord.buttons(ask.original_id or "")
        clock.advance(59)
        assert await gateway.expired_prompts.sweep() == 0 and edits_of(fake_discord, ask.original_id) == []
        clock.advance(2)
        await eventually(lambda: edits_of(fake_discord, ask.original_id), what="the prompt edited")
        assert await gateway.expired_prompts.sweep() == 0
        assert len(edits_of(fake_discord, ask.original_id)) == 1
        message = fake_discord.messages[ask.original_id or ""]
        assert fake_discord.buttons(ask.original_id or "") == [] and message["embeds"] == []
        assert "/close BTC/USD: expired at" in str(message["content"])
        assert "nothing was done; send /close again" in str(message["content"])
        assert trading.intents == []
    finally:
        await gateway.stop()


async def test_a_prompt_that_expired_while_the_service_was_down_is_edited_at_start(
        sqlite_db: Database, fake_discord: FakeDiscord, trading: FakeTrading) -> None:
    clock = ManualClock()
    first = await started(sqlite_db, fake_discord, trading, clock)
    try:
        ask = await slash(fake_discord, "close", {"pair": "ETH/USD"}, user=TRADER)
        assert fake_discord.buttons(ask.original_id or "")
    finally:
        await first.stop()
    clock.advance(3600)  # past the interaction token's 15 minutes: the bot edits its message itself
    second = await started(sqlite_db, fake_discord, trading, clock)
    try:
        await eventually(lambda: edits_of(fake_discord, ask.original_id), what="the prompt edited at start")
        assert len(edits_of(fake_discord, ask.original_id)) == 1
        assert fake_discord.buttons(ask.original_id or "") == []
    finally:
        await second.stop()
