"""The Slack adapter never fails silently: a Socket Mode connection that cannot be made shows as down (slack-sdk
keeps retrying on its own) and as up once it is made; an answer Slack refuses with 5xx is retried."""

from __future__ import annotations

from bot.app import build_dispatcher
from bot.platforms.slack import SlackAdapter
from core.ops.components import ComponentHealth
from core.settings.settings_models import ChatSettings
from exchanges.clock import SystemClock
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.slack.conftest import (
    CHAT_SETTINGS,
    OPS,
    VIEWER,
    StartSlack,
    slack_settings,
)
from tests.core.waiting import eventually
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


async def test_an_answer_refused_with_5xx_is_retried(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    health = ComponentHealth()
    await start_slack(health=health)
    fake_slack.respond_failures = 2
    await fake_slack.command("whoami", user=VIEWER, channel=OPS)
    await eventually(lambda: len(fake_slack.posted) == 1, 10, "the answer, on the third try")
    assert fake_slack.respond_refused == 2 and "U0CAROL001" in fake_slack.posted[0].text
    assert _state(health, "slack:send") == "up"


async def test_an_answer_still_refused_after_four_tries_shows_down(start_slack: StartSlack,
                                                                   fake_slack: FakeSlack) -> None:
    health = ComponentHealth()
    await start_slack(health=health)
    fake_slack.respond_failures = 10
    await fake_slack.command("whoami", user=VIEWER, channel=OPS)
    await eventually(lambda: "gave up" in _reason(health, "slack:send"), 10, "slack:send down, given up")
    assert fake_slack.respond_refused == 4 and fake_slack.posted == []
    assert _state(health, "slack:send") == "down"


def _reason(health: ComponentHealth, name: str) -> str:
    status = health.get(name)
    return status.reason if status is not None else ""
