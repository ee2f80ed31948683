"""Fixtures: a fake Discord (REST + gateway) and the Discord adapter on a real dispatcher pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import build_dispatcher
from bot.platforms.discord import DiscordGateway
from core.settings.settings_models import ChatSettings, DiscordSettings
from exchanges.clock import SystemClock
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.fakes.discord import FakeDiscord

ADMIN, TRADER, VIEWER, ADMIN2, STRANGER = ("80351110224678912", "80351110224678913", "80351110224678914",
                                           "80351110224678915", "80351110224678966")
GUILD, OTHER_GUILD = "613425648685547541", "613425648685547599"
CHANNEL, OTHER_CHANNEL, DM = "381870553235193857", "381870553235193899", "381870553235193111"
CHAT_SETTINGS: dict[str, Any] = {
    "admins": {"discord": (ADMIN, ADMIN2)},
    "traders": {"discord": (TRADER,)},
    "viewers": {"discord": (VIEWER,)},
    "allowed_chats": {"discord": (CHANNEL,)},
    "rate_limit_per_minute": 1000,
}

StartGateway = Callable[..., Awaitable[DiscordGateway]]



def discord_settings(fake: FakeDiscord, **overrides: Any) -> DiscordSettings:
    # defer_after_s at its maximum: on a loaded machine the tests still see the direct answer they check
    values: dict[str, Any] = {"enabled": True, "token": SecretStr(fake.token), "guilds": (GUILD,),
                              "api_base": fake.api_base, "gateway_url": fake.gateway_url, "defer_after_s": 2.5}
    return DiscordSettings(**{**values, **overrides})


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def trading() -> FakeTrading:
    fake = FakeTrading()
    fake.add_positions("BTC/USD", "ETH/USD")
    return fake


@pytest.fixture
async def start_gateway(sqlite_db: Database, fake_discord: FakeDiscord,
                        trading: FakeTrading) -> AsyncIterator[StartGateway]:
    """``await start_gateway(chat={...}, **discord_overrides)``: a connected adapter (stopped at teardown)."""
    started: list[DiscordGateway] = []

    async def start(epoch: int = 1, chat: dict[str, Any] | None = None, services: Any = None,
                    **overrides: Any) -> DiscordGateway:
        dispatcher = build_dispatcher(sqlite_db, services or trading, ChatSettings(**{**CHAT_SETTINGS, **(chat or {})}),
                                      clock=SystemClock(), instance_id=f"test-{len(started)}")
        gateway = DiscordGateway(dispatcher, discord_settings(fake_discord, **overrides))
        await gateway.start(epoch)
        started.append(gateway)
        await asyncio.wait_for(gateway.connected.wait(), 10)
        return gateway

    yield start
    for gateway in reversed(started):
        await gateway.stop()
