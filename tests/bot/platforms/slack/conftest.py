"""Fixtures: a fake Slack (Web API, Socket Mode, response_url) and the Slack adapter on a real dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import build_dispatcher
from bot.platforms.slack import SlackAdapter
from core.ops import ComponentHealth
from core.settings.settings_models import ChatSettings, SlackSettings
from exchanges.clock import SystemClock
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.core.waiting import eventually
from tests.fakes.slack import TEAM, FakeSlack

ADMIN, TRADER, VIEWER, ADMIN2, STRANGER = "U0ALICE001", "U0BOB00001", "U0CAROL001", "U0DAVE0001", "U0MALLORY1"
OPS, OTHER_CHANNEL, DM = "C0OPS00001", "C0RANDOM01", "D0DIRECT01"
OTHER_TEAM = "T0OTHER001"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHAT_SETTINGS: dict[str, Any] = {
    "admins": {"slack": (ADMIN, ADMIN2)},
    "traders": {"slack": (TRADER,)},
    "viewers": {"slack": (VIEWER,)},
    "allowed_chats": {"slack": (OPS,)},
    "rate_limit_per_minute": 1000,
}

StartSlack = Callable[..., Awaitable[SlackAdapter]]



def slack_settings(fake: FakeSlack, **overrides: Any) -> SlackSettings:
    values: dict[str, Any] = {"enabled": True, "bot_token": SecretStr(fake.bot_token),
                              "app_token": SecretStr(fake.app_token), "signing_secret": SecretStr(SIGNING_SECRET),
                              "workspaces": (TEAM,), "api_base": fake.api_base, "http_host": "127.0.0.1",
                              "http_port": 0, "request_timeout_s": 2}
    return SlackSettings(**{**values, **overrides})


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(post_rate_per_s=50, post_burst=50) as fake:
        yield fake


@pytest.fixture
def trading() -> FakeTrading:
    fake = FakeTrading()
    fake.add_positions("BTC/USD", "ETH/USD")
    return fake


@pytest.fixture
async def start_slack(sqlite_db: Database, fake_slack: FakeSlack, trading: FakeTrading) -> AsyncIterator[StartSlack]:
    """``await start_slack(mode="socket", chat={...}, **slack_overrides)``: a started adapter; in socket mode
    connected to the fake (stopped at teardown)."""
    started: list[SlackAdapter] = []

    async def start(chat: dict[str, Any] | None = None, services: Any = None, health: ComponentHealth | None = None,
                    **overrides: Any) -> SlackAdapter:
        dispatcher = build_dispatcher(sqlite_db, services or trading, ChatSettings(**{**CHAT_SETTINGS, **(chat or {})}),
                                      clock=SystemClock(), instance_id=f"test-{len(started)}")
        adapter = SlackAdapter(dispatcher, slack_settings(fake_slack, **overrides), health=health)
        await adapter.start()
        started.append(adapter)
        if adapter.settings.mode == "socket":
            await eventually(lambda: len(fake_slack.sockets) >= len(started), what="socket mode connection")
        return adapter

    yield start
    for adapter in reversed(started):
        await adapter.stop()
