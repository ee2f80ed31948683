"""The Discord gateway never dies silently: a refused token is retried (not fatal for the service) and shown
as the component's state until the gateway connects."""

from __future__ import annotations

from pydantic import SecretStr

from bot.app import build_dispatcher
from bot.platforms.discord import DiscordGateway
from core.ops.components import ComponentHealth
from core.runtime.lifecycle import TaskFailed
from core.settings.settings_models import ChatSettings
from exchanges.clock import SystemClock
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.discord.conftest import CHAT_SETTINGS, discord_settings
from tests.core.waiting import eventually
from tests.fakes.discord import FakeDiscord


def _state(health: ComponentHealth) -> tuple[str, str]:
    status = health.get("discord")
    return (status.state, status.reason) if status is not None else ("absent", "")


async def test_a_refused_token_is_retried_and_shown_down_instead_of_stopping_the_service(
        sqlite_db: Database, fake_discord: FakeDiscord, trading: FakeTrading) -> None:
    # Before: LoginFailure ended the gateway task and was reported as a failure that stops the whole service.
    failures: list[TaskFailed] = []
    health = ComponentHealth()
    dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=SystemClock())
    gateway = DiscordGateway(dispatcher, discord_settings(fake_discord, token=SecretStr("a-rotated-token")),
                             on_failure=failures.append, health=health, max_backoff_s=0.2)
    assert _state(health) == ("idle", "connects only while leader")
    await gateway.start(7)
    try:
        await eventually(lambda: _state(health)[0] == "down", 10, "discord shown down")
        assert "refused" in _state(health)[1] and "discord.token" in _state(health)[1]
        fake_discord.token = "a-rotated-token"  # the token Discord accepts is the configured one again
        await eventually(gateway.connected.is_set, 10, "connected")
        await eventually(lambda: _state(health) == ("up", "connected (leader epoch 7)"), 10, "discord shown up")
        assert failures == []
    finally:
        await gateway.stop()
    assert _state(health)[0] == "idle"
