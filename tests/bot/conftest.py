"""Fixtures for the command core: a fake trading service, a manual clock, and harnesses on the
migrated database of every kind (SQLite and PostgreSQL, from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.identity import Actor, ChatRef
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock

ADMIN = Actor("telegram", "1", "alice")
TRADER = Actor("telegram", "2", "bob")
VIEWER = Actor("telegram", "3", "carol")
ADMIN2 = Actor("telegram", "4", "dave")
STRANGER = Actor("telegram", "666", "mallory")
GROUP = ChatRef("telegram", "-100", "group")
OTHER_GROUP = ChatRef("telegram", "-200", "group")

BASE_SETTINGS: dict[str, Any] = {
    "admins": {"telegram": ("1", "4")},
    "traders": {"telegram": ("2",)},
    "viewers": {"telegram": ("3",)},
    "allowed_chats": {"telegram": ("-100",)},
    "rate_limit_per_minute": 1000,
}

MakeHarness = Callable[..., Awaitable[ChatHarness]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake() -> FakeTrading:
    trading = FakeTrading()
    trading.add_positions("BTC/USD", "ETH/USD")
    return trading


@pytest.fixture
def make_harness(db: Database, fake: FakeTrading, clock: ManualClock) -> MakeHarness:
    """``await make_harness(**chat_settings_overrides)`` -> a harness whose default actor is the admin."""

    async def make(services: Any = None, **overrides: Any) -> ChatHarness:
        settings = ChatSettings(**{**BASE_SETTINGS, **overrides})
        dispatcher = build_dispatcher(db, services or fake, settings, clock=clock)
        return ChatHarness(dispatcher, actor=ADMIN)

    return make


@pytest.fixture
async def h(make_harness: MakeHarness) -> ChatHarness:
    return await make_harness()
