"""The Telegram adapter end to end: the real python-telegram-bot against the fake Bot API server,
the real dispatcher on SQLite and PostgreSQL, a fake trading service behind it."""

from __future__ import annotations

import time

import aiohttp
import pytest

from bot.app import build_dispatcher
from bot.platforms.telegram import TelegramPolling
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.telegram.conftest import (
    ADMIN,
    ADMIN2,
    CHAT_SETTINGS,
    GROUP,
    STRANGER,
    TRADER,
    VIEWER,
    MakeBot,
    telegram_settings,
)
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # raised inside PTB


async def test_status_returns_the_status(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    await make_bot()
    fake_tg.message(ADMIN, "/status")
    reply = await fake_tg.reply_to(ADMIN)
    assert reply.text.startswith("🟢 Running · equity 11,000.00 USD") and "Open positions (2)" in reply.text
    pre = [e for e in reply.entities if e["type"] == "pre"]
    assert pre and "BTC/USD" in reply.text[pre[0]["offset"]:]  # the positions table is monospace
    assert reply.reply_to is None  # private chat: no quoting


async def test_commands_in_a_group_quote_the_command_and_honour_the_bot_name(make_bot: MakeBot,
                                                                          fake_tg: FakeTelegram) -> None:
    await make_bot()
    fake_tg.message(VIEWER, "/status@OtherBot", chat_id=GROUP, kind="supergroup")  # not for us
    update = fake_tg.message(VIEWER, "/status@Tradectl_Test_Bot", chat_id=GROUP, kind="supergroup")
    reply = await fake_tg.reply_to(GROUP)
    assert reply.reply_to == fake_tg.history[update]["message"]["message_id"]
    await fake_tg.wait_for(lambda: not fake_tg.pending, 5, "updates confirmed")
    assert len(fake_tg.sent_to(GROUP)) == 1


async def test_kill_asks_with_buttons_and_a_confirm_by_the_same_user_kills(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                                          trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(ADMIN, "/kill")
    ask = await fake_tg.reply_to(ADMIN)
    assert "Confirm /kill" in ask.text
    assert [b["text"] for b in ask.buttons] == ["🛑 Kill now", "Cancel"]
    assert trading.state == "running"
    fake_tg.press(ADMIN, ask, ask.callback_data("🛑 Kill now"))
    done = await fake_tg.reply_to(ADMIN, 1)
    assert "KILLED" in done.text
    assert trading.state == "killed" and [type(i).__name__ for i in trading.intents] == ["Kill"]
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    assert "KILLED" in ask.text.splitlines()[-1]  # the question now says how it ended
    assert len(fake_tg.answers) == 1 and fake_tg.answers[0].get("text") is None  # the spinner stopped


async def test_cancel_removes_the_buttons_and_does_nothing(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                          trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(TRADER, "/close BTC/USD")
    ask = await fake_tg.reply_to(TRADER)
    fake_tg.press(TRADER, ask, ask.callback_data("Cancel"))
    done = await fake_tg.reply_to(TRADER, 1)
    assert "Cancelled /close" in done.text
    await fake_tg.wait_for(lambda: ask.keyboard is None, 5, "the buttons removed")
    assert trading.intents == []


async def test_a_press_by_another_user_is_refused(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                 trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(ADMIN, "/kill", chat_id=GROUP, kind="supergroup")
    ask = await fake_tg.reply_to(GROUP)
    fake_tg.press(ADMIN2, ask, ask.callback_data("🛑 Kill now"))  # an admin, but not the one who asked
    refusal = await fake_tg.reply_to(GROUP, 1)
    assert "Only the person who asked" in refusal.text
    answer = fake_tg.answers[-1]
    assert answer["show_alert"] == "true" and "Only the person who asked" in answer["text"]
    assert trading.state == "running" and ask.keyboard is not None  # still there for the requester
    fake_tg.press(ADMIN, ask, ask.callback_data("🛑 Kill now"))
    assert "KILLED" in (await fake_tg.reply_to(GROUP, 2)).text


async def test_a_replayed_press_is_refused(make_bot: MakeBot, fake_tg: FakeTelegram, trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(ADMIN, "/kill")
    ask = await fake_tg.reply_to(ADMIN)
    data = ask.callback_data("🛑 Kill now")
    fake_tg.press(ADMIN, ask, data)
    await fake_tg.reply_to(ADMIN, 1)
    fake_tg.press(ADMIN, ask, data)  # the same button data again (a replay, or a double tap)
    again = await fake_tg.reply_to(ADMIN, 2)
    assert "already used" in again.text
    assert [type(i).__name__ for i in trading.intents] == ["Kill"]


async def test_a_redelivered_update_executes_once(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                 trading: FakeTrading) -> None:
    first = await make_bot(epoch=1)
    update = fake_tg.message(TRADER, "/pause maintenance")
    await fake_tg.reply_to(TRADER)
    await first.step_down()
    fake_tg.redeliver(update)  # its confirmation lost, as when a leader dies right after handling it
    second = await make_bot(epoch=2)
    await fake_tg.wait_for(lambda: fake_tg.delivered[update] == 2, 10, "the update delivered again")
    fake_tg.message(TRADER, "/status")
    assert "Paused" in (await fake_tg.reply_to(TRADER, 1)).text  # the next reply is the /status one
    assert [type(i).__name__ for i in trading.intents] == ["PauseEntries"]
    assert second.epoch == 2


async def test_every_update_passes_the_allowlist(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(STRANGER, "/pause")
    assert (await fake_tg.reply_to(STRANGER)).text == "⛔ Not authorized."
    fake_tg.message(ADMIN, "/pause", chat_id=-999, kind="group")  # an admin, in a group not allowlisted
    assert "Not authorized" in (await fake_tg.reply_to(-999)).text
    fake_tg.message(ADMIN, "/closeall", chat_id=GROUP, kind="supergroup")
    ask = await fake_tg.reply_to(GROUP)
    fake_tg.press(STRANGER + 1, ask, ask.callback_data("Close all now"))  # a button press is an update like any other
    assert "Not authorized" in (await fake_tg.reply_to(GROUP, 1)).text
    fake_tg.press(STRANGER, ask, ask.callback_data("Close all now"))  # warned once already: refused silently
    await fake_tg.wait_for(lambda: len(fake_tg.answers) == 2, 5, "the press answered")
    assert trading.intents == [] and len(fake_tg.sent_to(GROUP)) == 2


async def test_a_stale_destructive_command_is_refused(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                     trading: FakeTrading) -> None:
    await make_bot()
    fake_tg.message(ADMIN, "/kill", date=time.time() - 3600)  # delivered an hour late
    assert "sent more than" in (await fake_tg.reply_to(ADMIN)).text
    assert trading.intents == []


async def test_a_long_reply_arrives_in_parts(make_bot: MakeBot, fake_tg: FakeTelegram, trading: FakeTrading) -> None:
    trading.add_positions(*(f"C{i:03d}/USD" for i in range(150)))
    await make_bot()
    fake_tg.message(VIEWER, "/positions")
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(VIEWER)) >= 2, 10, "two parts")
    await fake_tg.wait_for(lambda: "C149/USD" in fake_tg.sent_to(VIEWER)[-1].text, 10, "the last row")
    parts = fake_tg.sent_to(VIEWER)
    assert all(any(e["type"] == "pre" for e in p.entities) for p in parts)
    assert sum(p.text.count("/USD") for p in parts) == 152
    assert not fake_tg.errors


async def test_a_chart_goes_as_a_photo(make_bot: MakeBot, fake_tg: FakeTelegram, trading: FakeTrading) -> None:
    async def chart(days: int) -> bytes:
        return b"\x89PNG\r\n\x1a\n" + b"0" * 2000

    trading.chart = chart  # type: ignore[attr-defined]
    await make_bot()
    fake_tg.message(VIEWER, "/chart 7")
    photo = await fake_tg.reply_to(VIEWER)
    assert photo.kind == "photo" and photo.photo_bytes == 2008 and photo.text == "Equity, last 7 day(s)"


async def test_the_command_menu_is_published(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    await make_bot()
    await fake_tg.wait_for(lambda: bool(fake_tg.commands), 5, "setMyCommands")
    names = [c["command"] for c in fake_tg.commands]
    assert {"status", "help"} <= set(names) and "kill" not in names  # the default menu: viewer commands


async def test_a_429_waits_and_sends_the_same_message_again(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    fake_tg.chat_rate_per_s, fake_tg.chat_burst = 1.0, 1  # Telegram stricter than the bot's own pacing
    bot = await make_bot(chat_rate_per_s=20.0, chat_burst=20)
    for n in range(3):
        fake_tg.message(VIEWER, f"/help {['status', 'positions', 'balance'][n]}")
    await fake_tg.wait_for(lambda: len(fake_tg.sent_to(VIEWER)) == 3, 15, "three replies")
    texts = fake_tg.texts(VIEWER)
    assert ["/status" in texts[0], "/positions" in texts[1], "/balance" in texts[2]] == [True] * 3  # in order
    assert fake_tg.status_429 >= 1 and fake_tg.early_retries == 0
    assert bot.sender is not None and bot.sender.rate_limited == fake_tg.status_429


async def test_a_conflict_stops_polling_rechecks_and_resumes(make_bot: MakeBot, fake_tg: FakeTelegram) -> None:
    rechecks: list[float] = []
    bot = await make_bot(on_conflict=lambda: rechecks.append(time.monotonic()))
    async with aiohttp.ClientSession() as http:  # someone else polls the same bot
        async with http.post(f"{fake_tg.base_url}{fake_tg.token}/getUpdates", data={"timeout": "0"}) as resp:
            assert resp.status == 200
    await fake_tg.wait_for(lambda: bool(rechecks), 5, "a lease re-check")
    assert fake_tg.conflicts == 1 and bot.conflicts == 1
    await fake_tg.wait_for(lambda: bot.state == "polling" and bool(fake_tg.pollers()), 5, "polling again")
    fake_tg.message(ADMIN, "/status")
    assert "Running · equity" in (await fake_tg.reply_to(ADMIN)).text


async def test_a_stale_leader_leaves_the_update_for_the_next(make_bot: MakeBot, fake_tg: FakeTelegram,
                                                            trading: FakeTrading) -> None:
    lease = {"epoch": 1}

    async def fence(epoch: int) -> bool:
        return epoch == lease["epoch"]

    old = await make_bot(epoch=1, fence=fence)
    lease["epoch"] = 2  # another instance took over; this one has not noticed yet
    update = fake_tg.message(TRADER, "/pause")
    await fake_tg.wait_for(lambda: old.state == "paused", 5, "the stale leader to stop polling")
    assert trading.intents == [] and fake_tg.sent_to(TRADER) == []
    assert any(u["update_id"] == update for u in fake_tg.pending)  # not confirmed
    await old.step_down()
    await make_bot(epoch=2, fence=fence)
    assert "paused" in (await fake_tg.reply_to(TRADER)).text
    assert [type(i).__name__ for i in trading.intents] == ["PauseEntries"]


async def test_a_follower_is_connected_but_never_polls(make_bot: MakeBot, fake_tg: FakeTelegram, db: Database,
                                                      trading: FakeTrading) -> None:
    follower = TelegramPolling(build_dispatcher(db, trading, ChatSettings(**CHAT_SETTINGS)),
                               telegram_settings(fake_tg, base_url=fake_tg.tagged_base_url("follower")))
    await follower.start()
    try:
        await make_bot()
        await fake_tg.wait_for(lambda: any(tag == "follower" for tag, _, _ in fake_tg.requests), 5, "getMe")
        fake_tg.message(ADMIN, "/status")
        await fake_tg.reply_to(ADMIN)
        assert {method for tag, method, _ in fake_tg.requests if tag == "follower"} == {"getMe"}
        assert {p.tag for p in fake_tg.polls} == {""}  # only the leader's untagged client polled
    finally:
        await follower.stop()
