"""The kill lane: /kill, /closeall, /pause and confirmation presses are never refused by the per-actor
rate limit, and adapters can recognise them in memory to let them jump their queues."""

from __future__ import annotations

from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT, Actor, ChatRef
from tests.bot.conftest import ADMIN, GROUP, OTHER_GROUP, STRANGER, TRADER, VIEWER, MakeHarness


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
