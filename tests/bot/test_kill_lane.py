"""The kill lane: /kill, /closeall, /pause and confirmation presses are never refused by the per-actor
rate limit, and adapters can recognise them in memory to let them jump their queues."""

from __future__ import annotations

import pytest

from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT, Actor, ChatRef
from bot.ratelimit import KILL_LANE_PER_MINUTE
from tests.bot.conftest import ADMIN, GROUP, OTHER_GROUP, STRANGER, TRADER, VIEWER, MakeHarness
from tests.bot.fake_trading import FakeTrading


def _private(actor: Actor) -> ChatRef:
    return ChatRef(actor.platform, actor.user_id, "private")


async def test_urgent_classifies_in_memory(make_harness: MakeHarness) -> None:
    h = await make_harness()
    d = h.dispatcher
    assert d.urgent(ADMIN, _private(ADMIN), text="/kill")
    assert d.urgent(ADMIN, GROUP, text="/closeall")
    assert d.urgent(ADMIN, GROUP, text="/Kill@tradebot now")
    assert d.urgent(TRADER, GROUP, text="/pause news at 14:30")
    assert d.urgent(CONSOLE_ACTOR, CONSOLE_CHAT, text="/kill")
    assert d.urgent(VIEWER, GROUP, payload="cf:AAAAAAAAAAAAAAAA")  # any allowlisted presser
    assert d.urgent(TRADER, GROUP, payload="cx:AAAAAAAAAAAAAAAA")
    assert not d.urgent(TRADER, GROUP, text="/kill")  # not the trader's to give
    assert not d.urgent(VIEWER, GROUP, text="/pause")
    assert not d.urgent(ADMIN, GROUP, text="/status")
    assert not d.urgent(ADMIN, GROUP, text="kill")  # chatter, not a command
    assert not d.urgent(STRANGER, _private(STRANGER), text="/kill")
    assert not d.urgent(STRANGER, _private(STRANGER), payload="cf:AAAAAAAAAAAAAAAA")
    assert not d.urgent(ADMIN, OTHER_GROUP, text="/kill")  # a chat that is not allowed
    assert not d.urgent(ADMIN, GROUP, payload="cf:short")
    assert not d.urgent(ADMIN, GROUP, payload="cf:AAAAAAAAAAAAAAAA\n")
    assert not d.urgent(ADMIN, GROUP)
    assert d.urgent(ADMIN, GROUP, text="/kill bad\ud800x")


@pytest.mark.parametrize("who", ["admin", "console"])
async def test_kill_after_a_burst_of_reads_is_not_refused(make_harness: MakeHarness, fake: FakeTrading,
                                                          who: str) -> None:
    """29 /status in a minute used to leave /kill its prompt and refuse the Confirm ("Too many commands")."""
    h = await make_harness(rate_limit_per_minute=30)
    actor, chat = (ADMIN, _private(ADMIN)) if who == "admin" else (CONSOLE_ACTOR, CONSOLE_CHAT)
    for _ in range(30):
        assert not (await h.send("/status", as_=actor, chat=chat)).has_style("error")
    assert "Too many commands" in (await h.send("/status", as_=actor, chat=chat)).text  # the budget is spent
    asked = await h.send("/kill", as_=actor, chat=chat)
    assert asked.buttons, asked.text
    done = await h.press(asked.confirm_payload, as_=actor, chat=chat)
    assert "KILLED" in done.text
    assert fake.submitted() == ["Kill"]
    assert fake.state == "killed"


async def test_closeall_and_pause_ride_the_kill_lane_but_reads_do_not(make_harness: MakeHarness,
                                                                      fake: FakeTrading) -> None:
    h = await make_harness(rate_limit_per_minute=5)
    for actor in (ADMIN, TRADER, VIEWER):
        for _ in range(5):
            await h.send("/status", as_=actor, chat=GROUP)
    assert "entries paused" in (await h.send("/pause lunch", as_=TRADER, chat=GROUP)).text
    asked = await h.send("/closeall", as_=ADMIN, chat=GROUP)
    cancelled = await h.press(asked.cancel_payload, as_=ADMIN, chat=GROUP)
    assert "Cancelled /closeall" in cancelled.text
    assert "closed" in (await h.confirm("/closeall", as_=ADMIN, chat=GROUP)).text
    # The lane is for what the role allows: a viewer's /kill, or anyone's /status, is still limited.
    assert "Too many commands" in (await h.send("/kill", as_=VIEWER, chat=GROUP)).text
    assert "Too many commands" in (await h.send("/status", as_=ADMIN, chat=GROUP)).text
    assert fake.submitted() == ["PauseEntries", "CloseAll"]


async def test_the_kill_lane_has_a_budget_of_its_own(make_harness: MakeHarness, fake: FakeTrading) -> None:
    """Generous, but not unlimited: a script pressing forged buttons is refused after the lane's budget."""
    h = await make_harness(rate_limit_per_minute=5)
    for _ in range(KILL_LANE_PER_MINUTE):
        assert "not valid" in (await h.press("cf:AAAAAAAAAAAAAAAA", as_=ADMIN)).text
    assert "at most 120 per minute" in (await h.press("cf:AAAAAAAAAAAAAAAA", as_=ADMIN)).text
    assert not (await h.send("/status", as_=ADMIN)).has_style("error")  # the ordinary budget is untouched
