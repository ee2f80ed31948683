"""Alerts to Telegram through the outbox: plain text, silent when asked, 429 and refusals translated."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

from bot.notify import OutboxDispatcher
from bot.notify.senders import AlertMessage, DeliveryError
from bot.platforms.telegram import TelegramAlertSender
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import LeadershipChanged
from persistence.db import Database
from tests.bot.platforms.telegram.conftest import telegram_settings
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
OPS = -100900


@pytest.fixture
async def sender(fake_tg: FakeTelegram) -> AsyncIterator[TelegramAlertSender]:
    alerts = TelegramAlertSender(telegram_settings(fake_tg, enabled=False))
    yield alerts
    await alerts.aclose()


async def test_an_alert_is_plain_text_and_silent_when_asked(sender: TelegramAlertSender, fake_tg: FakeTelegram) -> None:
    await sender.send(str(OPS), AlertMessage("order_filled", "info", ("filled <0.5> BTC & more",), silent=True))
    [sent] = fake_tg.sent_to(OPS)
    assert sent.text == "filled <0.5> BTC & more" and sent.silent  # no markup: nothing to escape or break


async def test_a_chart_alert_goes_as_a_photo(sender: TelegramAlertSender, fake_tg: FakeTelegram) -> None:
    await sender.send(str(OPS), AlertMessage("daily_report", "info", ("Daily PnL +12.00",), False, image=b"PNG" * 10))
    [photo] = fake_tg.sent_to(OPS)
    assert photo.kind == "photo" and photo.text == "Daily PnL +12.00"


async def test_rate_limits_and_refusals_become_delivery_errors(sender: TelegramAlertSender,
                                                               fake_tg: FakeTelegram) -> None:
    fake_tg.chat_rate_per_s, fake_tg.chat_burst = 0.1, 1
    message = AlertMessage("x", "info", ("hello",), False)
    await sender.send(str(OPS), message)
    with pytest.raises(DeliveryError) as slow:
        await sender.send(str(OPS), message)
    assert slow.value.retry_after == 1.0 and slow.value.retryable
    fake_tg.missing_chats.add(-42)
    with pytest.raises(DeliveryError) as gone:
        await sender.send("-42", message)
    assert not gone.value.retryable


async def test_leadership_changes_reach_the_chat_through_the_outbox(db: Database, sender: TelegramAlertSender,
                                                                    fake_tg: FakeTelegram) -> None:
    settings = NotifySettings(destinations=(Destination(name="ops", platform="telegram", target=str(OPS)),))
    async with db.session() as s:
        OutboxWriter(settings).write(s, LeadershipChanged(instance_id="host:1:abc", leader=True, epoch=7))
    outbox = OutboxDispatcher(db, settings, {"telegram": sender}, instance_id="test", poll_s=0.05)
    await outbox.start()
    try:
        await fake_tg.wait_for(lambda: bool(fake_tg.sent_to(OPS)), 10, "the alert")
    finally:
        await outbox.stop()
    [sent] = fake_tg.sent_to(OPS)
    assert sent.text == "⚠️ This server (host) took over trading"  # in plain words, no lease jargon
    assert sent.entities == [{"type": "bold", "offset": 0, "length": len(sent.text)}]  # the title, in bold


async def test_alerts_go_out_through_clients_given_the_shared_tls_context(fake_tg: FakeTelegram) -> None:
    # the service hands every httpx client one TLS context (core/app/wiring.py) instead of one each
    alerts = TelegramAlertSender(telegram_settings(fake_tg, enabled=False), tls=ssl.create_default_context())
    try:
        await alerts.send(str(OPS), AlertMessage("order_filled", "info", ("filled 0.5 BTC",), silent=False))
    finally:
        await alerts.aclose()
    [sent] = fake_tg.sent_to(OPS)
    assert sent.text == "filled 0.5 BTC"
