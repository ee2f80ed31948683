"""Discord: a command button (``run:``) is pressed like any other and runs its command as the presser."""

from __future__ import annotations

from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.discord.conftest import GUILD, TRADER, StartGateway
from tests.bot.platforms.discord.test_gateway import answered, slash
from tests.core.waiting import eventually
from tests.fakes.discord import FakeDiscord


async def test_a_close_button_asks_to_confirm_and_stays(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                                        trading: FakeTrading) -> None:
    await start_gateway()
    listed = await slash(fake_discord, "close", {}, user=TRADER)
    assert [b["label"] for b in fake_discord.buttons(listed.original_id)] == ["BTC/USD", "ETH/USD"]
    press = await fake_discord.press(listed.original_id, "ETH/USD", user_id=TRADER, guild_id=GUILD)
    await eventually(answered(press, 1))
    assert "ETH/USD" in press.text() and trading.intents == []  # asked, not closed
    assert [b["label"] for b in fake_discord.buttons(listed.original_id)] == ["BTC/USD", "ETH/USD"]

