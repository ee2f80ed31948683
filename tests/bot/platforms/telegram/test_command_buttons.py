"""Command buttons and the persistent reply keyboard on Telegram: python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import pytest

from bot.platforms.telegram.render import render_telegram
from bot.reply import Reply, Text, choice_buttons
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.telegram.conftest import ADMIN, GROUP, TRADER, VIEWER, MakeBot
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_close_without_a_pair_shows_a_button_per_position_and_a_press_asks_to_confirm(
        make_bot: MakeBot, fake_tg: FakeTelegram, trading: FakeTrading) -> None:
    trading.add_positions("SOL/USD")
    await make_bot()
    fake_tg.message(TRADER, "/close")
    listed = await fake_tg.reply_to(TRADER)
    assert [b["text"] for b in listed.buttons] == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert [b["callback_data"] for b in listed.buttons] == ["run:close BTC/USD", "run:close ETH/USD",
                                                            "run:close SOL/USD"]
    assert "BTC/USD" in listed.text  # the list stays readable as text too
    fake_tg.press(TRADER, listed, listed.callback_data("ETH/USD"))
    asked = await fake_tg.reply_to(TRADER, 1)
    assert "Confirm /close ETH/USD" in asked.text or "Closes ETH/USD" in asked.text
    assert [b["text"] for b in asked.buttons] == ["Close ETH/USD", "Cancel"]
    assert listed.keyboard is not None  # a command button leaves its message's buttons
    assert trading.intents == []
    fake_tg.press(TRADER, asked, asked.callback_data("Close ETH/USD"))
    await fake_tg.wait_for(lambda: "ETH/USD" not in trading.open, 5, "ETH/USD closed")


async def test_a_viewer_pressing_a_close_button_is_refused(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                           trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(TRADER, "/close", chat_id=GROUP, kind="supergroup")
    listed = await fake_tg.reply_to(GROUP)
    fake_tg.press(VIEWER, listed, listed.callback_data("BTC/USD"))
    await fake_tg.wait_for(lambda: any(a.get("show_alert") for a in fake_tg.answers), 5, "the refusal popped up")
    assert "needs the trader role" in next(a["text"] for a in fake_tg.answers if a.get("show_alert"))
    assert trading.intents == []


async def test_the_reply_keyboard_is_sent_in_private_chats_when_on(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    await make_bot(reply_keyboard=True)
    fake_tg.message(VIEWER, "/status")
    reply = await fake_tg.reply_to(VIEWER)
    assert reply.reply_keyboard is not None and reply.reply_keyboard.get("is_persistent") is True
    texts = [b["text"] if isinstance(b, dict) else b for row in reply.reply_keyboard["keyboard"] for b in row]
    assert texts == ["/status", "/positions", "/pnl", "/trades", "/help"]
    fake_tg.message(ADMIN, "/status", chat_id=GROUP, kind="supergroup")
    in_group = await fake_tg.reply_to(GROUP)
    assert in_group.reply_keyboard is None  # never in a group
    fake_tg.message(ADMIN, "/kill")
    asked = await fake_tg.reply_to(ADMIN)
    assert asked.buttons and asked.reply_keyboard is None  # a message carries its inline buttons instead


async def test_no_reply_keyboard_when_off(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    await make_bot()
    fake_tg.message(VIEWER, "/status")
    reply = await fake_tg.reply_to(VIEWER)
    assert reply.reply_keyboard is None


def test_many_choices_wrap_into_rows_a_phone_can_show() -> None:
    pairs = [f"C{i}/USD" for i in range(8)]
    (message,) = render_telegram(Reply((Text("Open positions"), *choice_buttons([(p, f"close {p}") for p in pairs]))))
    assert [[b.label for b in row] for row in message.keyboard] == [pairs[:4], pairs[4:]]
