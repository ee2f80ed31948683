"""The Telegram / menu per role (setMyCommands with a scope per chat and per group member): a viewer
never sees /kill; python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import pytest

from tests.bot.platforms.telegram.conftest import ADMIN, GROUP, TRADER, VIEWER, MakeBot
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_each_role_sees_its_own_commands(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    await make_bot()
    await fake_tg.wait_for(lambda: f"chat_member:{GROUP}:{TRADER}" in fake_tg.scoped and fake_tg.commands, 5,
                           "the menus published")
    default = fake_tg.menu_for(999)  # anyone else, anywhere
    assert "status" in default and "kill" not in default and "pause" not in default
    for chat in (VIEWER, GROUP):
        viewer = fake_tg.menu_for(chat, VIEWER)
        assert "status" in viewer and not {"kill", "closeall", "pause", "grant"} & set(viewer)
    for chat in (TRADER, GROUP):
        trader = fake_tg.menu_for(chat, TRADER)
        assert {"pause", "close"} <= set(trader) and not {"kill", "closeall", "grant"} & set(trader)
    for chat in (ADMIN, GROUP):
        assert {"kill", "closeall", "grant", "status"} <= set(fake_tg.menu_for(chat, ADMIN))
