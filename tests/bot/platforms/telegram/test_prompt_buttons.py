"""Used confirmation buttons go away on Telegram whatever the outcome (expired, failed, cancelled), and
the question then says how it ended: python-telegram-bot against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.app import build_dispatcher
from bot.platforms.telegram import TelegramPolling
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.telegram.conftest import ADMIN, ADMIN2, CHAT_SETTINGS, GROUP, TRADER, telegram_settings
from tests.fakes.clock import ManualClock
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

Start = Callable[[], Awaitable[TelegramPolling]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def start(sqlite_db: Database, fake_tg: FakeTelegram, trading: FakeTrading,
                clock: ManualClock) -> AsyncIterator[Start]:
    """The adapter on a dispatcher whose clock the test moves (confirmation expiry)."""
    started: list[TelegramPolling] = []

    async def make() -> TelegramPolling:
        dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=clock)
        bot = TelegramPolling(dispatcher, telegram_settings(fake_tg))
        await bot.start()
        started.append(bot)
        await bot.lead(1)
        await fake_tg.wait_for(lambda: bot.state == "polling" and len(fake_tg.pollers()) > 0, 10, "polling")
        return bot

    yield make
    for bot in started:
        await bot.stop()


async def test_an_expired_prompt_loses_its_buttons_when_pressed(start: Start, fake_tg: FakeTelegram,
                                                                 trading: FakeTrading, clock: ManualClock) -> None:
    await start()
    fake_tg.message(ADMIN, "/kill")
    ask = await fake_tg.reply_to(ADMIN)
    clock.advance(61)
    fake_tg.press(ADMIN, ask, ask.callback_data("🛑 Kill now"))
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    assert "expired" in ask.text.splitlines()[-1]  # the question says how it ended
    assert trading.state == "running"


async def test_a_confirmed_command_that_fails_loses_its_buttons(start: Start, fake_tg: FakeTelegram,
                                                                trading: FakeTrading) -> None:
    await start()
    fake_tg.message(TRADER, "/close BTC/USD")
    ask = await fake_tg.reply_to(TRADER)
    trading.open.pop("BTC/USD")  # closed by a stop meanwhile: the confirmed command fails
    fake_tg.press(TRADER, ask, ask.callback_data("Close BTC/USD"))
    failed = await fake_tg.reply_to(TRADER, 1)
    assert "no open position in BTC/USD" in failed.text
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")


async def test_a_press_by_someone_else_leaves_the_buttons_and_a_used_one_removes_them(
        start: Start, fake_tg: FakeTelegram, trading: FakeTrading) -> None:
    await start()
    fake_tg.message(ADMIN, "/kill", chat_id=GROUP, kind="supergroup")
    ask = await fake_tg.reply_to(GROUP)
    data = ask.callback_data("🛑 Kill now")
    fake_tg.press(ADMIN2, ask, data)
    await fake_tg.reply_to(GROUP, 1)
    assert ask.keyboard is not None  # still there for the requester
    fake_tg.press(ADMIN, ask, ask.callback_data("Cancel"))
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    assert "Cancelled /kill" in ask.text
