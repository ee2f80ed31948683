"""A flood never delays /kill: updates are handled concurrently per chat, in bounded queues, and the kill
lane jumps them. The real python-telegram-bot, the fake Bot API, the real dispatcher on SQLite and
PostgreSQL; a trading service whose /positions hangs until released stands for a slow command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.lanes import LaneLimits
from core.trading.views import PositionView
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.telegram.conftest import ADMIN, GROUP, STRANGER, TRADER, VIEWER, MakeBot
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def release(make_bot: MakeBot, trading: FakeTrading) -> AsyncIterator[asyncio.Event]:
    """/positions waits until this event is set (set at the latest when the test ends, before the bot
    stops, so that a failing test does not hang on a handler still waiting)."""
    event = asyncio.Event()
    real = trading.positions

    async def positions() -> list[PositionView]:
        await event.wait()
        return await real()

    trading.positions = positions  # type: ignore[method-assign]
    yield event
    event.set()


async def test_a_chat_stuck_on_a_slow_command_does_not_delay_another_chat(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                                          release: asyncio.Event) -> None:
    # Before: one update at a time, so the viewer's hanging /positions held up everyone.
    await make_bot()
    for _ in range(5):
        fake_tg.message(VIEWER, "/positions")
    fake_tg.message(ADMIN, "/status")
    assert "BTC/USD" in (await fake_tg.reply_to(ADMIN)).text  # the /status reply
    assert fake_tg.sent_to(VIEWER) == []
    release.set()
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(VIEWER)) == 5, 10, "the viewer's five replies")


async def test_the_kill_lane_jumps_the_queue_of_its_own_chat(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                            trading: FakeTrading, release: asyncio.Event) -> None:
    await make_bot()
    for _ in range(8):  # a viewer floods the group with a slow command
        fake_tg.message(VIEWER, "/positions", chat_id=GROUP, kind="supergroup")
    fake_tg.message(ADMIN, "/kill", chat_id=GROUP, kind="supergroup")
    ask = await fake_tg.reply_to(GROUP)  # the question, with its buttons
    fake_tg.press(ADMIN, ask, next(b["callback_data"] for b in ask.buttons if b["callback_data"].startswith("cf:")))
    await fake_tg.wait_for(lambda: trading.state == "killed", 10, "killed")
    assert "KILLED" in (await fake_tg.reply_to(GROUP, 1)).text  # while the viewer's commands still hang
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    release.set()
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(GROUP)) == 10, 15, "the viewer's replies after the kill")


async def test_pause_jumps_its_own_chats_backlog_during_a_strangers_flood(
        make_bot: MakeBot, fake_tg: FakeTelegram, trading: FakeTrading, release: asyncio.Event) -> None:
    await make_bot()
    fake_tg.message(TRADER, "/positions")  # the trader's own chat is busy too
    for i in range(50):
        fake_tg.message(STRANGER, f"/positions {i}")
    fake_tg.message(TRADER, "/pause flood")
    await fake_tg.wait_for(lambda: trading.state == "paused", 10, "paused")
    await fake_tg.reply_to(TRADER)  # the /pause reply, before the hanging /positions one


async def test_a_chat_holds_a_bounded_backlog_and_the_rest_is_dropped(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                                     release: asyncio.Event) -> None:
    bot = await make_bot(lane_limits=LaneLimits(per_chat=3, total=100, urgent=4))
    for _ in range(10):
        fake_tg.message(VIEWER, "/positions")
    await fake_tg.wait_for(lambda: not fake_tg.pending, 10, "the flood fetched and confirmed")
    assert bot.lanes is not None and bot.lanes.stats().queued == 3 and bot.lanes.dropped == 7
    fake_tg.message(ADMIN, "/status")  # another chat is not affected
    assert "BTC/USD" in (await fake_tg.reply_to(ADMIN)).text  # the /status reply
    release.set()
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(VIEWER)) == 3, 10, "three replies")
    fake_tg.message(VIEWER, "/status")
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(VIEWER)) == 4, 10, "the next command answered")
    assert "BTC/USD" in fake_tg.sent_to(VIEWER)[-1].text


async def test_a_chats_commands_keep_their_order(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    await make_bot()
    names = ["status", "positions", "balance", "pnl", "trades"]
    for name in names:
        fake_tg.message(ADMIN, f"/help {name}")
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(ADMIN)) == 5, 10, "five replies")
    texts = fake_tg.texts(ADMIN)
    assert [f"/{name}" in text for name, text in zip(names, texts, strict=True)] == [True] * 5


async def test_exactly_one_full_batch_does_not_hold_up_handling_until_the_long_poll_ends(
        make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    bot = await make_bot(poll_timeout_s=30)  # the next getUpdates waits up to 30 s: nothing more is pending
    for i in range(100):  # a full batch: more might be waiting, so fetching comes first for a moment
        fake_tg.message(STRANGER + i, "/help")
    await fake_tg.wait_for(lambda: len(fake_tg.sent) >= 100, 20,
                           "a hundred replies well before the 30 s long poll ends")
    assert bot.state == "polling"
