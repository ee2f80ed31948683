"""Discord: used confirmation buttons go away whatever the outcome, and refusals are ephemeral."""

from __future__ import annotations

import asyncio

from bot.app import build_dispatcher
from bot.platforms.discord import DiscordGateway
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.discord.conftest import (
    CHAT_SETTINGS,
    GUILD,
    TRADER,
    VIEWER,
    StartGateway,
    discord_settings,
)
from tests.bot.platforms.discord.test_gateway import answered, slash
from tests.core.waiting import eventually
from tests.fakes.clock import ManualClock
from tests.fakes.discord import EPHEMERAL, FakeDiscord


async def test_an_expired_prompt_loses_its_buttons(sqlite_db: Database, fake_discord: FakeDiscord,
                                                   trading: FakeTrading) -> None:
    clock = ManualClock()
    dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=clock)
    gateway = DiscordGateway(dispatcher, discord_settings(fake_discord))
    await gateway.start(1)
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        ask = await slash(fake_discord, "close", {"pair": "BTC/USD"}, user=TRADER)
        clock.advance(61)
        press = await fake_discord.press(ask.original_id, "Close BTC/USD", user_id=TRADER, guild_id=GUILD)
        await eventually(answered(press, 2))
        assert fake_discord.buttons(ask.original_id) == []  # gone, though the press was refused
        assert "expired" in press.text()
        assert press.answers[-1][1]["flags"] & EPHEMERAL  # the refusal is for the presser only
        assert trading.intents == []
    finally:
        await gateway.stop()


async def test_a_confirmed_command_that_fails_loses_its_buttons(start_gateway: StartGateway,
                                                                fake_discord: FakeDiscord,
                                                                trading: FakeTrading) -> None:
    await start_gateway()
    ask = await slash(fake_discord, "close", {"pair": "BTC/USD"}, user=TRADER)
    trading.open.pop("BTC/USD")
    press = await fake_discord.press(ask.original_id, "Close BTC/USD", user_id=TRADER, guild_id=GUILD)
    await eventually(answered(press, 2))
    assert fake_discord.buttons(ask.original_id) == []
    assert "no open position in BTC/USD" in press.text()


async def test_refusals_of_slash_commands_are_ephemeral(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    await start_gateway()
    denied = await slash(fake_discord, "kill", user=VIEWER)
    assert "needs the admin role" in denied.text()
    assert denied.answers[0][1]["data"]["flags"] == EPHEMERAL
    invalid = await slash(fake_discord, "close", {"pair": "SOL/USD"}, user=TRADER)  # nothing open in SOL/USD
    assert "No open position in SOL/USD" in invalid.text() and invalid.answers[0][1]["data"]["flags"] == EPHEMERAL
    status = await slash(fake_discord, "status", user=VIEWER)
    assert not status.answers[0][1]["data"].get("flags")  # an answer is for the channel


async def test_a_cancel_press_loses_the_buttons_and_closes_nothing(start_gateway: StartGateway,
                                                                   fake_discord: FakeDiscord,
                                                                   trading: FakeTrading) -> None:
    await start_gateway()
    ask = await slash(fake_discord, "close", {"pair": "BTC/USD"}, user=TRADER)
    assert [b["label"] for b in fake_discord.buttons(ask.original_id)] == ["Close BTC/USD", "Cancel"]
    press = await fake_discord.press(ask.original_id, "Cancel", user_id=TRADER, guild_id=GUILD)
    await eventually(answered(press, 2))
    assert fake_discord.buttons(ask.original_id) == []
    assert "Cancelled /close" in press.text()
    assert trading.intents == [] and "BTC/USD" in trading.open
