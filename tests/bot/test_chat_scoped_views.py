"""/audit and /roles answer for the chat they are asked in; every chat is shown only in a private chat."""

from __future__ import annotations

from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT, Actor, ChatRef
from tests.bot.conftest import ADMIN, GROUP, OTHER_GROUP, STRANGER, TRADER, VIEWER, MakeHarness

SLACK_ADMIN = Actor("slack", "U024BE7LH")
SLACK_DM = ChatRef("slack", "D0123ABCD", "private")


async def _history(h) -> None:  # type: ignore[no-untyped-def]
    """Rows a group must not see: a private /pause reason, a Slack DM, a stranger's text, another group."""
    await h.send("/pause divorce lawyer at 3")  # the admin's private chat
    await h.send("/resume")
    await h.send("/status", as_=SLACK_ADMIN, chat=SLACK_DM)
    await h.send("/status call me at +1 555 0100", as_=STRANGER)
    await h.send("/status", as_=ADMIN, chat=OTHER_GROUP)  # not allowed, audited
    await h.send("/status", as_=VIEWER)  # the viewer's private chat only
    await h.send("/positions", as_=TRADER, chat=GROUP)


async def test_audit_in_a_group_shows_only_that_group(make_harness: MakeHarness) -> None:
    h = await make_harness(admins={"telegram": ("1", "4"), "slack": ("U024BE7LH",)})
    await _history(h)
    seen = (await h.send("/audit 50", chat=GROUP)).text
    for leaked in ["divorce", "U024BE7LH", "555", "666", "-200", "telegram:3"]:
        assert leaked not in seen, (leaked, seen)
    assert "/positions" in seen and "telegram:2" in seen
    assert "Audit log of this chat" in seen and "/audit all in a private chat" in seen
    refused = await h.send("/audit all", chat=GROUP)
    assert refused.has_style("error") and "only in a private chat" in refused.text and "divorce" not in refused.text


async def test_audit_all_in_a_private_chat_shows_every_chat_and_says_so(make_harness: MakeHarness) -> None:
    h = await make_harness(admins={"telegram": ("1", "4"), "slack": ("U024BE7LH",)})
    await _history(h)
    mine = (await h.send("/audit 50")).text  # the admin's private chat, without "all": that chat only
    assert "divorce" in mine and "U024BE7LH" not in mine and "/positions" not in mine
    every = (await h.send("/audit all 50")).text
    assert "Audit log, every chat" in every
    for row in ["divorce", "slack:U024BE7LH", "telegram:666", "-200", "/positions"]:
        assert row in every, (row, every)
    assert "Audit log, every chat" in (await h.send("/audit all", as_=CONSOLE_ACTOR, chat=CONSOLE_CHAT)).text


async def test_roles_in_a_group_shows_only_people_of_that_group(make_harness: MakeHarness) -> None:
    h = await make_harness(admins={"telegram": ("1", "4"), "slack": ("U024BE7LH",)})
    await _history(h)
    await h.send("/grant 77 viewer")  # granted in private, never seen in the group
    here = (await h.send("/roles", chat=GROUP)).text
    assert "alice (telegram:1) | admin" in here and "bob (telegram:2) | trader" in here
    for leaked in ["U024BE7LH", "telegram:3", "telegram:4", "telegram:77"]:
        assert leaked not in here, (leaked, here)
    assert "/roles all in a private chat" in here
    assert "only in a private chat" in (await h.send("/roles all", chat=GROUP)).text
    everyone = (await h.send("/roles all")).text
    assert all(x in everyone for x in ["U024BE7LH", "telegram:3", "telegram:4",
                                       "telegram:77 | viewer | granted | alice (telegram:1)"]), everyone
