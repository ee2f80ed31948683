"""Sending: order per chat, pacing per chat, a 429 waited out and the same message sent again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.platforms.telegram.api import build_bot
from bot.platforms.telegram.render import PhotoMessage, TextMessage
from bot.platforms.telegram.send import ChatSender, Post
from tests.bot.platforms.telegram.conftest import telegram_settings
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
A, B = 501, 502


@pytest.fixture
async def bot(fake_tg: FakeTelegram) -> AsyncIterator[Bot]:
    bot = build_bot(telegram_settings(fake_tg))
    await bot.initialize()
    yield bot
    await bot.shutdown()


def post(text: str) -> Post:
    return Post(TextMessage(text))


async def test_one_chat_is_paced_and_kept_in_order(bot: Bot, fake_tg: FakeTelegram) -> None:
    sender = ChatSender(bot, rate_per_s=5.0, burst=1)
    started = time.monotonic()
    for n in range(6):
        sender.submit(A, post(f"message {n}"))
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(A)) == 6, 10, "six messages")
    assert time.monotonic() - started >= 0.9  # 1 at once, then one per 0.2 s
    assert fake_tg.texts(A) == [f"message {n}" for n in range(6)]
    await sender.close(1.0)


async def test_a_busy_chat_does_not_hold_up_another(bot: Bot, fake_tg: FakeTelegram) -> None:
    sender = ChatSender(bot, rate_per_s=2.0, burst=1)
    for n in range(4):
        sender.submit(A, post(f"a{n}"))
    sender.submit(B, post("b0"))
    await fake_tg.wait_for(lambda: fake_tg.texts(B) == ["b0"], 5, "chat B served")
    assert len(fake_tg.sent_to(A)) < 4
    await sender.close(5.0)
    assert fake_tg.texts(A) == ["a0", "a1", "a2", "a3"]


async def test_a_429_blocks_only_that_chat_and_the_message_is_sent_again(bot: Bot, fake_tg: FakeTelegram) -> None:
    fake_tg.chat_rate_per_s, fake_tg.chat_burst = 0.5, 1
    sender = ChatSender(bot, rate_per_s=50.0, burst=50)  # pacing looser than Telegram: 429s follow
    for n in range(3):
        sender.submit(A, post(f"a{n}"))
    await fake_tg.wait_for(lambda: fake_tg.status_429 >= 1, 5, "a 429")
    sender.submit(B, post("b0"))
    await fake_tg.wait_for(lambda: fake_tg.texts(B) == ["b0"], 2, "chat B served while A waits")
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(A)) == 3, 15, "all of chat A")
    assert fake_tg.texts(A) == ["a0", "a1", "a2"]  # none dropped, none reordered
    assert fake_tg.early_retries == 0  # Telegram's retry_after was honoured
    assert sender.rate_limited == fake_tg.status_429 and sender.skipped == 0
    await sender.close(1.0)


async def test_the_waits_before_sending_are_reported_by_reason(bot: Bot, fake_tg: FakeTelegram) -> None:
    """Our own pacing and Telegram's "retry after" both hold replies back: the metrics tell them apart."""
    from prometheus_client import generate_latest

    from core.ops.instruments import Instruments
    from tests.core.ops.test_metrics import parse, value

    fake_tg.chat_rate_per_s, fake_tg.chat_burst = 0.5, 1  # Telegram answers the second message with a 429
    instruments = Instruments()
    sender = ChatSender(bot, rate_per_s=5.0, burst=1, pacing=instruments)  # and we pace one per 0.2 s
    for n in range(2):
        sender.submit(A, post(f"a{n}"))
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(A)) == 2, 10, "both messages")
    await sender.close(1.0)
    got = parse(generate_latest(instruments.registry).decode())
    assert fake_tg.status_429 >= 1
    assert 0.1 <= value(got, "tradectl_chat_send_wait_seconds_total", platform="telegram", reason="pace") < 1
    assert value(got, "tradectl_chat_send_wait_seconds_total", platform="telegram", reason="retry_after") >= 0.9


async def test_html_telegram_cannot_parse_goes_as_plain_text(bot: Bot, fake_tg: FakeTelegram) -> None:
    sender = ChatSender(bot, rate_per_s=10.0, burst=5)
    sender.submit(A, post("<b>unclosed &amp; broken"))
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(A)) == 1, 5, "the message")
    assert fake_tg.texts(A) == ["unclosed & broken"]
    assert fake_tg.errors and "can't parse entities" in fake_tg.errors[0][1]
    await sender.close(1.0)


async def test_photos_and_keyboards(bot: Bot, fake_tg: FakeTelegram) -> None:
    from bot.reply import Button

    sender = ChatSender(bot, rate_per_s=10.0, burst=5)
    sender.submit(A, Post(PhotoMessage(b"\x89PNG" + b"1" * 100, "<b>Equity</b>", ((Button("Again", "x:1"),),))))
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(A)) == 1, 5, "the photo")
    photo = fake_tg.sent_to(A)[0]
    assert photo.kind == "photo" and photo.photo_bytes == 104 and photo.text == "Equity"
    assert photo.buttons == [{"text": "Again", "callback_data": "x:1"}]
    await sender.close(1.0)


async def test_close_sends_what_is_queued_then_refuses_more(bot: Bot, fake_tg: FakeTelegram) -> None:
    sender = ChatSender(bot, rate_per_s=20.0, burst=1)
    for n in range(5):
        sender.submit(A, post(f"a{n}"))
    await sender.close(5.0)
    assert fake_tg.texts(A) == [f"a{n}" for n in range(5)]
    sender.submit(A, post("late"))
    assert sender.pending() == 0
