"""Fixtures: a fake Bot API server, and the Telegram adapter on a real dispatcher pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import build_dispatcher
from bot.lanes import LaneLimits
from bot.platforms.telegram import TelegramPolling
from core.ops.components import ComponentHealth
from core.settings.settings_models import ChatSettings, TelegramSettings
from exchanges.clock import SystemClock
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.fakes.telegram import FakeTelegram

ADMIN, TRADER, VIEWER, ADMIN2, STRANGER = 1001, 1002, 1003, 1004, 6666
GROUP = -100500
CHAT_SETTINGS: dict[str, Any] = {
    "admins": {"telegram": (str(ADMIN), str(ADMIN2))},
    "traders": {"telegram": (str(TRADER),)},
    "viewers": {"telegram": (str(VIEWER),)},
    "allowed_chats": {"telegram": (str(GROUP),)},
    "rate_limit_per_minute": 1000,
}

MakeBot = Callable[..., Awaitable[TelegramPolling]]


def telegram_settings(fake: FakeTelegram, **overrides: Any) -> TelegramSettings:
    values: dict[str, Any] = {"enabled": True, "token": SecretStr(fake.token), "base_url": fake.base_url,
                              "poll_timeout_s": 5, "chat_rate_per_s": 20.0, "chat_burst": 20, "conflict_backoff_s": 0.5,
                              "stop_timeout_s": 5.0}
    return TelegramSettings(**{**values, **overrides})


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(chat_rate_per_s=50, chat_burst=50) as fake:
        yield fake


@pytest.fixture
def trading() -> FakeTrading:
    fake = FakeTrading()
    fake.add_positions("BTC/USD", "ETH/USD")
    return fake


@pytest.fixture
async def make_bot(db: Database, fake_tg: FakeTelegram, trading: FakeTrading) -> AsyncIterator[MakeBot]:
    """``await make_bot(epoch=1, chat=..., **telegram_overrides)``: a started adapter (stopped at teardown)."""
    started: list[TelegramPolling] = []

    async def make(epoch: int = 1, chat: dict[str, Any] | None = None, fence: Any = None, on_conflict: Any = None,
                   health: ComponentHealth | None = None, lane_limits: LaneLimits | None = None,
                   **overrides: Any) -> TelegramPolling:
        dispatcher = build_dispatcher(db, trading, ChatSettings(**{**CHAT_SETTINGS, **(chat or {})}),
                                      clock=SystemClock(), instance_id=f"test-{len(started)}")
        bot = TelegramPolling(dispatcher, telegram_settings(fake_tg, **overrides), fence=fence,
                              on_conflict=on_conflict, health=health, lane_limits=lane_limits)
        await bot.start()
        started.append(bot)
        await bot.lead(epoch)
        await fake_tg.wait_for(lambda: bot.state == "polling" and len(fake_tg.pollers()) > 0, 10, "polling")
        return bot

    yield make
    for bot in reversed(started):
        await bot.stop()
