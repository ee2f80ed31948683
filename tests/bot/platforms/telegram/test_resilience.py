"""Telegram never stops for good on one odd answer: the real python-telegram-bot against a fake Bot API
that answers garbage, fails, or sends an update it cannot read — and then recovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot

from bot.app import build_dispatcher
from bot.platforms.telegram import TelegramPolling
from bot.platforms.telegram.api import build_bot
from bot.platforms.telegram.render import TextMessage
from bot.platforms.telegram.send import ChatSender, CloseKeyboard, OverallPace, Post
from core.ops.components import ComponentHealth
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.telegram.conftest import ADMIN, CHAT_SETTINGS, MakeBot, telegram_settings
from tests.fakes.telegram import ApiError, FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class OddTelegram(FakeTelegram):
    """The fake Bot API, with switches for odd answers: a ``getMe`` result PTB cannot build a bot user
    from, and ``getUpdates`` / ``sendMessage`` failing with 502 a given number of times."""

    odd_get_me = False
    failing_polls = 0
    failing_sends = 0

    async def _api_getMe(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        if self.odd_get_me:
            return {"is_bot": True, "note": "not a user object"}  # no id, no first_name
        return await super()._api_getMe(params, request, tag)

    async def _api_getUpdates(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        if self.failing_polls > 0:
            self.failing_polls -= 1
            raise ApiError(502, "Bad Gateway")
        return await super()._api_getUpdates(params, request, tag)

    async def _api_sendMessage(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        if self.failing_sends > 0:
            self.failing_sends -= 1
            raise ApiError(502, "Bad Gateway")
        return await super()._api_sendMessage(params, request, tag)


@asynccontextmanager
async def plain_bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = build_bot(telegram_settings(fake))
    await bot.initialize()
    try:
        yield bot
    finally:
        await bot.shutdown()


@pytest.fixture
async def odd_tg() -> Any:
    async with OddTelegram(chat_rate_per_s=50, chat_burst=50) as fake:
        yield fake


def _state(health: ComponentHealth, name: str = "telegram") -> str:
    status = health.get(name)
    return status.state if status is not None else "absent"


async def test_a_get_me_answer_ptb_cannot_parse_is_retried_shown_down_and_recovers(
        odd_tg: OddTelegram, db: Database, trading: FakeTrading) -> None:
    # Before: the exception (not a TelegramError) ended the connect task for good, and nothing said so.
    odd_tg.odd_get_me = True
    health = ComponentHealth()
    bot = TelegramPolling(build_dispatcher(db, trading, ChatSettings(**CHAT_SETTINGS)), telegram_settings(odd_tg),
                          health=health)
    await bot.start()
    try:
        await odd_tg.wait_for(lambda: _state(health) == "down", 10, "telegram shown down")
        status = health.get("telegram")
        assert status is not None and "unexpected answer to getMe" in status.reason and "retrying" in status.reason
        assert [p.name for p in health.problems()] == ["telegram"]
        await odd_tg.wait_for(lambda: sum(m == "getMe" for _, m, _ in odd_tg.requests) >= 2, 10, "a second getMe")
        odd_tg.odd_get_me = False  # the Bot API behaves again
        await odd_tg.wait_for(lambda: _state(health) == "idle", 15, "connected again")
        assert health.problems() == ()
        await bot.lead(1)
        await odd_tg.wait_for(lambda: bot.state == "polling", 10, "polling")
        assert _state(health) == "up"
        odd_tg.message(ADMIN, "/status")
        assert "BTC/USD" in (await odd_tg.reply_to(ADMIN)).text
    finally:
        await bot.stop()
    assert health.get("telegram") is None  # a stopped adapter reports nothing


async def test_polling_failures_show_down_until_a_poll_works_again(odd_tg: OddTelegram, db: Database,
                                                                  trading: FakeTrading) -> None:
    health = ComponentHealth()
    bot = TelegramPolling(build_dispatcher(db, trading, ChatSettings(**CHAT_SETTINGS)), telegram_settings(odd_tg),
                          health=health)
    await bot.start()
    try:
        await bot.lead(1)
        await odd_tg.wait_for(lambda: bot.state == "polling" and bool(odd_tg.pollers()), 10, "polling")
        odd_tg.failing_polls = 2
        odd_tg.message(ADMIN, "/status")  # wakes the long poll; the next two polls answer 502
        await odd_tg.wait_for(lambda: _state(health) == "down", 10, "polling shown down")
        status = health.get("telegram")
        assert status is not None and "polling failed" in status.reason
        assert "BTC/USD" in (await odd_tg.reply_to(ADMIN, timeout=15)).text
        await odd_tg.wait_for(lambda: _state(health) == "up", 15, "polling shown up again")
    finally:
        await bot.stop()


async def test_an_update_ptb_cannot_read_is_skipped_and_later_ones_are_handled(make_bot: MakeBot,
                                                                            fake_tg: FakeTelegram) -> None:
    # Before: PTB logged the parse error and fetched the same batch again, forever: Telegram stopped for good.
    bot = await make_bot()
    chat = fake_tg.chat(ADMIN)
    poison = fake_tg._push({"update_id": 999_999, "message": {"message_id": 1, "chat": chat, "text": "/status"}})
    fake_tg.message(ADMIN, "/status")  # no "date", no "from" above: PTB cannot build that Message
    reply = await fake_tg.reply_to(ADMIN)
    assert "BTC/USD" in reply.text
    await fake_tg.wait_for(lambda: not fake_tg.pending, 10, "every update confirmed")
    assert len(fake_tg.sent_to(ADMIN)) == 1  # the unreadable one did nothing
    assert bot._app is not None and poison in bot._app.bot._request[0].skipped  # type: ignore[attr-defined]


async def test_one_message_that_cannot_be_sent_does_not_take_the_chat_queue_with_it(
        odd_tg: OddTelegram) -> None:
    # Before: an exception other than a Telegram error ended the chat's sender task and dropped every
    # message queued behind it (how a kill report was lost).
    async with plain_bot(odd_tg) as bot:
        health = ComponentHealth()
        sender = ChatSender(bot, rate_per_s=50, burst=50, health=health)
        sender.submit(ADMIN, Post(TextMessage("first")))
        sent = await odd_tg.reply_to(ADMIN)
        sender.submit(ADMIN, CloseKeyboard(sent.message_id, "bad \ud800 text", "<i>done</i>"))  # cannot be encoded
        sender.submit(ADMIN, Post(TextMessage("KILLED: 2 positions closed")))
        after = await odd_tg.reply_to(ADMIN, 1)
        assert after.text == "KILLED: 2 positions closed"
        assert sender.failed == 1
        await sender.close(5.0)


async def test_sending_retries_through_an_outage_shown_down_then_up(odd_tg: OddTelegram) -> None:
    async with plain_bot(odd_tg) as bot:
        health = ComponentHealth()
        sender = ChatSender(bot, rate_per_s=50, burst=50, health=health)
        odd_tg.failing_sends = 2
        sender.submit(ADMIN, Post(TextMessage("KILLED")))
        await odd_tg.wait_for(lambda: _state(health, "telegram:send") == "down", 10, "sending shown down")
        assert (await odd_tg.reply_to(ADMIN, timeout=15)).text == "KILLED"
        await odd_tg.wait_for(lambda: _state(health, "telegram:send") == "up", 5, "sending shown up again")
        assert sender.skipped == 0 and len(odd_tg.sent_to(ADMIN)) == 1
        await sender.close(5.0)


async def test_a_reply_to_the_kill_lane_goes_ahead_of_the_chats_queued_messages(odd_tg: OddTelegram) -> None:
    odd_tg.chat_rate_per_s, odd_tg.chat_burst = 1000.0, 1000
    async with plain_bot(odd_tg) as bot:
        sender = ChatSender(bot, rate_per_s=5.0, burst=1)  # a busy group: one message per 0.2 s
        for i in range(4):
            sender.submit(ADMIN, Post(TextMessage(f"status {i}")))
        sender.submit(ADMIN, Post(TextMessage("KILLED")), urgent=True)
        await odd_tg.wait_for(lambda: len(odd_tg.sent_to(ADMIN)) == 5, 10, "five messages")
        assert odd_tg.texts(ADMIN) == ["KILLED", "status 0", "status 1", "status 2", "status 3"]
        await sender.close(5.0)


async def test_the_overall_limit_serves_kill_lane_replies_first() -> None:
    pace, order = OverallPace(rate_per_s=20.0), []
    for _ in range(20):
        await pace.turn(False)  # the first second's budget is used up

    async def send(name: str, urgent: bool) -> None:
        await pace.turn(urgent)
        order.append(name)

    waiting = [asyncio.create_task(send(f"not authorized {i}", False)) for i in range(5)]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(send("KILLED", True)))
    await asyncio.gather(*waiting)
    assert order[0] == "KILLED" and order[1:] == [f"not authorized {i}" for i in range(5)]
    pace.close()
