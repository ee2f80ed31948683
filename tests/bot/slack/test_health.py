"""The Slack adapter never fails silently: a Socket Mode connection that cannot be made shows as down (slack-sdk
keeps retrying on its own) and as up once it is made; an answer Slack refuses with 5xx is retried."""

from __future__ import annotations

from bot.app import build_dispatcher
from bot.context import SystemClock
from bot.slack import SlackAdapter
from core.components import ComponentHealth
from core.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.slack.conftest import CHAT_SETTINGS, eventually, slack_settings
from tests.fakes.slack import FakeSlack


def _state(health: ComponentHealth, name: str = "slack") -> str:
    status = health.get(name)
    return status.state if status is not None else "absent"


async def test_socket_mode_that_cannot_connect_shows_down_then_up(sqlite_db: Database, fake_slack: FakeSlack,
                                                                  trading: FakeTrading) -> None:
    health = ComponentHealth()
    real_token = fake_slack.app_token
    fake_slack.app_token = "xapp-not-the-configured-one"  # apps.connections.open answers invalid_auth
    dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=SystemClock())
    adapter = SlackAdapter(dispatcher, slack_settings(fake_slack, app_token=real_token), health=health,
                           connect_grace_s=0.3)
    await adapter.start()
    try:
        assert _state(health) == "starting"
        await eventually(lambda: _state(health) == "down", 10, "slack shown down")
        status = health.get("slack")
        assert status is not None and "cannot connect" in status.reason
        fake_slack.app_token = real_token
        await eventually(lambda: _state(health) == "up", 30, "slack shown up once connected")
    finally:
        await adapter.stop()
    assert _state(health) == "absent"
