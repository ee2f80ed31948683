"""The app's Home tab: opening it publishes the status to an allowlisted user (``views.publish``), through the
dispatcher as that user; a stranger gets a view saying they are not authorized, and the attempt is audited."""

from __future__ import annotations

import asyncio
import json

from tests.bot.platforms.slack.conftest import (
    DM,
    OTHER_TEAM,
    STRANGER,
    VIEWER,
    StartSlack,
)
from tests.core.waiting import eventually
from tests.fakes.slack import FakeSlack


def shown(view: dict) -> str:  # type: ignore[type-arg]
    return json.dumps(view["blocks"], ensure_ascii=False)


async def test_allowlisted_user_sees_the_status_on_the_home_tab(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    adapter = await start_slack()
    await fake_slack.open_home(user=VIEWER, channel=DM)
    await eventually(lambda: fake_slack.home_views(VIEWER), what="the home view")
    (view,) = fake_slack.home_views(VIEWER)
    assert view["type"] == "home"
    text = shown(view)
    assert "Running · equity" in text and "Open positions" in text and "BTC/USD" in text
    assert "/tradectl status" in text and "actions" not in {b["type"] for b in view["blocks"]}
    assert fake_slack.posted == []  # a view, not a message in any channel
    (row,) = await adapter.dispatcher.audit.recent(5, platform="slack", user_id=VIEWER)
    assert (row.command, row.decision) == ("status", "allowed")  # the same path as typing /tradectl status


async def test_stranger_gets_a_not_authorized_view_and_is_audited(start_slack: StartSlack,
                                                                  fake_slack: FakeSlack) -> None:
    adapter = await start_slack()
    await fake_slack.open_home(user=STRANGER, channel="D0STRANGE1")
    await eventually(lambda: fake_slack.home_views(STRANGER), what="the home view")
    (view,) = fake_slack.home_views(STRANGER)
    (block,) = view["blocks"]  # that, and nothing else
    assert "Not authorized" in block["text"]["text"]
    assert "equity" not in shown(view) and "BTC/USD" not in shown(view)
    (row,) = await adapter.dispatcher.audit.recent(5, platform="slack", user_id=STRANGER)
    assert row.decision == "denied" and row.command == "status"


async def test_other_workspace_and_messages_tab(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    adapter = await start_slack()
    await fake_slack.open_home(user=VIEWER, channel=DM, team=OTHER_TEAM)
    await eventually(lambda: fake_slack.home_views(VIEWER), what="the home view")
    (view,) = fake_slack.home_views(VIEWER)
    assert "workspace is not allowed" in shown(view) and "equity" not in shown(view)
    await fake_slack.open_home(user=VIEWER, channel=DM, tab="messages")  # nothing to publish there
    await asyncio.sleep(0.3)
    assert len(fake_slack.views) == 1
    assert await adapter.dispatcher.audit.recent(5, platform="slack", user_id=VIEWER) == []


async def test_silent_setting_publishes_nothing_to_a_stranger(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    adapter = await start_slack(chat={"unauthorized_reply": "silent"})
    await fake_slack.open_home(user=STRANGER, channel="D0STRANGE1")
    await eventually(lambda: fake_slack.acks, what="the event acknowledged")
    await asyncio.sleep(0.5)
    assert fake_slack.views == []  # silent: not even a refusal
    (row,) = await adapter.dispatcher.audit.recent(5, platform="slack", user_id=STRANGER)
    assert row.decision == "denied"
