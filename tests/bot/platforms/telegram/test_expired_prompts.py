"""A confirmation prompt nobody pressed loses its buttons once it expires, and says so — once, and also
when it expired while the service was down: python-telegram-bot against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.app import build_dispatcher
from bot.platforms.telegram import TelegramPolling
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.telegram.conftest import ADMIN, CHAT_SETTINGS, telegram_settings
from tests.fakes.clock import ManualClock
from tests.fakes.telegram import BotMessage, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

Start = Callable[[], Awaitable[TelegramPolling]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def start(sqlite_db: Database, fake_tg: FakeTelegram, trading: FakeTrading,
                clock: ManualClock) -> AsyncIterator[Start]:
    """A leading adapter on a dispatcher whose clock the test moves; each call is a new process."""
    started: list[TelegramPolling] = []

    async def make() -> TelegramPolling:
        dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=clock)
        bot = TelegramPolling(dispatcher, telegram_settings(fake_tg), expiry_sweep_s=0.05)
        await bot.start()
        started.append(bot)
        await bot.lead(1)
        await fake_tg.wait_for(lambda: bot.state == "polling" and len(fake_tg.pollers()) > 0, 10, "polling")
        return bot

    yield make
    for bot in started:
        await bot.stop()


def edits_of(fake: FakeTelegram, message: BotMessage) -> list[str]:
    return [text for chat, mid, text in fake.edits if (chat, mid) == (message.chat_id, message.message_id)]


async def test_an_unpressed_prompt_is_edited_once_when_it_expires(start: Start, fake_tg: FakeTelegram,
                                                                   trading: FakeTrading, clock: ManualClock) -> None:
    bot = await start()
    fake_tg.message(ADMIN, "/kill")
    ask = await fake_tg.reply_to(ADMIN)
    assert ask.buttons
    clock.advance(59)
    assert await bot.expired_prompts.sweep() == 0  # not yet expired: untouched
    assert ask.keyboard is not None and edits_of(fake_tg, ask) == []
    clock.advance(2)
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    assert edits_of(fake_tg, ask) == [ask.text]
    assert "/kill: expired at" in ask.text and "nothing was done; send /kill again" in ask.text
    assert await bot.expired_prompts.sweep() == 0  # closed: never edited again
    assert len(edits_of(fake_tg, ask)) == 1 and trading.state == "running"


async def test_a_press_on_a_swept_prompt_says_it_expired(start: Start, fake_tg: FakeTelegram, trading: FakeTrading,
                                                        clock: ManualClock) -> None:
    bot = await start()
    fake_tg.message(ADMIN, "/kill")
    ask = await fake_tg.reply_to(ADMIN)
    payload = ask.callback_data("🛑 Kill now")
    clock.advance(61)
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    fake_tg.press(ADMIN, ask, payload)  # an old client still showing the button
    await fake_tg.wait_for(lambda: any("(expired)" in a.get("text", "") for a in fake_tg.answers), 5,
                           "the press answered")
    assert trading.state == "running" and bot.expired_prompts.platform == "telegram"


async def test_a_prompt_that_expired_while_the_service_was_down_is_edited_at_start(
        start: Start, fake_tg: FakeTelegram, clock: ManualClock) -> None:
    first = await start()
    fake_tg.message(ADMIN, "/closeall")
    ask = await fake_tg.reply_to(ADMIN)
    assert ask.buttons
    await first.stop()
    clock.advance(3600)
    await start()
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed at start")
    assert len(edits_of(fake_tg, ask)) == 1 and "/closeall: expired at" in ask.text
