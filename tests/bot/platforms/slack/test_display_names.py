"""Slack display names: looked up with ``users.info`` (the real slack_sdk client against the fake), shown
beside the ``U…`` id in /roles and /audit, at most one call per user a day, never failing or blocking a
command, never stored for strangers, and neutral however hostile."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.identity import Actor, DisplayNames, NameSource
from bot.neutral import ZWSP
from bot.platforms.slack.names import SlackNames
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.slack.conftest import (
    ADMIN,
    ADMIN2,
    DM,
    OPS,
    STRANGER,
    TRADER,
    VIEWER,
    StartSlack,
)
from tests.core.waiting import eventually
from tests.fakes.clock import ManualClock
from tests.fakes.slack import FakeSlack, Posted

DAY_S = 24 * 3600
PROFILE, HANDLE = NameSource.PROFILE, NameSource.HANDLE


async def reply_to(fake: FakeSlack, text: str, *, user: str = ADMIN, channel: str = OPS) -> Posted:
    """Run ``/tradectl <text>`` and return the (first) message that answers it."""
    before = len(fake.posted)
    await fake.command(text, user=user, channel=channel)
    await eventually(lambda: len(fake.posted) > before, what=f"the answer to {text!r}")
    return fake.posted[before]


async def test_display_name_from_users_info_shows_in_roles_and_audit(start_slack: StartSlack,
                                                                     fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice", real_name="Alice Hansen")
    fake_slack.add_user(VIEWER, name="carol", real_name="Carol Jones")  # no display name set: the real name
    adapter = await start_slack()
    await reply_to(fake_slack, "whoami", user=VIEWER)
    roles = (await reply_to(fake_slack, "roles")).readable()
    assert "Alice (slack:U0ALICE001)" in roles and "Carol Jones (slack:U0CAROL001)" in roles
    assert "u0alice001" not in roles and "u0carol001" not in roles  # not the legacy handles
    audit = (await reply_to(fake_slack, "audit")).readable()
    assert "Carol Jones (slack:U0CAROL001)" in audit
    assert await adapter.dispatcher.access.names.lookup() == {("slack", ADMIN): "Alice",
                                                               ("slack", VIEWER): "Carol Jones"}


async def test_many_commands_make_one_users_info_call_and_strangers_none(start_slack: StartSlack,
                                                                       fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.add_user(STRANGER, name="mallory", display_name="Mallory")
    adapter = await start_slack()
    answered = len(fake_slack.posted)
    await asyncio.gather(*(fake_slack.command("whoami", user=ADMIN, channel=OPS) for _ in range(10)))
    for _ in range(5):
        await fake_slack.command("status", user=ADMIN, channel=DM)
    await eventually(lambda: len(fake_slack.posted) >= answered + 15, what="fifteen answers")
    for _ in range(5):
        await fake_slack.command("status", user=STRANGER, channel=DM)
    await eventually(lambda: len(fake_slack.posted) >= answered + 16, what="the stranger refused")
    await asyncio.sleep(0.3)
    assert fake_slack.users_info_calls == [ADMIN]  # one for fifteen commands, some at the same time
    assert all("Alice" in p.readable() for p in fake_slack.posted if "whoami" in p.text.lower())
    assert ("slack", STRANGER) not in await adapter.dispatcher.access.names.lookup()


async def test_missing_scope_keeps_the_handle_and_the_command_answers(start_slack: StartSlack, fake_slack: FakeSlack,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.users_info_error = "missing_scope"
    await start_slack()
    with caplog.at_level(logging.DEBUG, logger="tradectl.slack.names"):
        status = await reply_to(fake_slack, "status", user=TRADER)
        assert "Running · equity" in status.readable()  # answered as ever
        roles = (await reply_to(fake_slack, "roles")).readable()
        await reply_to(fake_slack, "status", user=VIEWER)
    assert "u0alice001 (slack:U0ALICE001)" in roles and "u0bob00001 (slack:U0BOB00001)" in roles
    assert fake_slack.users_info_calls == [TRADER]  # the first refusal stops lookups for everyone
    warnings = [r for r in caplog.records if r.name == "tradectl.slack.names" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "users:read" in warnings[0].getMessage()


async def test_a_slow_users_info_never_holds_the_answer(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.users_info_delay_s = 1.5  # slower than a command waits (0.5 s), within the client's timeout (2 s)
    await start_slack()
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await reply_to(fake_slack, "whoami")
    assert loop.time() - started < 1.3 and "u0alice001" in first.readable()  # the handle, meanwhile
    for _ in range(20):  # the lookup goes on after the answer; a later command carries its result
        later = (await reply_to(fake_slack, "whoami")).readable()
        if "Alice" in later:
            break
    assert "Alice" in later
    assert fake_slack.users_info_calls == [ADMIN]


async def test_a_kill_never_waits_for_a_name(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    """The kill lane (here /kill and its Confirm press) goes on with the handle while the name is looked up;
    an ordinary command would wait for it (up to the adapter's wait, made long here to tell the two apart)."""
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.users_info_delay_s = 1.9  # within the client's timeout (2 s)
    adapter = await start_slack()
    adapter.names = SlackNames(adapter.client, adapter.dispatcher.access.names, adapter.dispatcher.clock, wait_s=30.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    prompt = await reply_to(fake_slack, "kill")
    assert loop.time() - started < 1.5, "the kill prompt waited for users.info"
    assert prompt.buttons()
    started = loop.time()
    await fake_slack.press(prompt, prompt.buttons()[0]["text"]["text"], user=ADMIN)
    await eventually(lambda: len(fake_slack.posted) > 1, what="the kill's result")
    assert loop.time() - started < 1.5, "the Confirm press waited for users.info"
    await eventually(lambda: fake_slack.users_info_calls == [ADMIN], what="the lookup the kill started")


async def test_hostile_display_names_are_neutral(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="alice.h", display_name="@channel <!channel> \u202elivE")
    fake_slack.add_user(VIEWER, name="carol", display_name="<@U0BOB00001|bob> @here\u2066")
    adapter = await start_slack()
    await reply_to(fake_slack, "whoami", user=VIEWER)
    roles = await reply_to(fake_slack, "roles")
    raw = json.dumps(roles.raw, ensure_ascii=False)
    assert "<!channel>" not in raw and "<@U0BOB00001" not in raw and "@channel" not in raw and "@here" not in raw
    assert "\u202e" not in raw and "\u2066" not in raw
    shown = roles.readable()
    assert f"@{ZWSP}channel &lt;!channel&gt; livE (slack:U0ALICE001)" in shown
    assert f"&lt;@U0BOB00001|bob&gt; @{ZWSP}here (slack:U0CAROL001)" in shown
    names = await adapter.dispatcher.access.names.lookup()
    assert names[("slack", ADMIN)] == "@channel <!channel> livE"  # stored as neutral text, escaped when shown


async def test_a_confirm_press_never_replaces_a_looked_up_name_with_its_handle(
        start_slack: StartSlack, fake_slack: FakeSlack, trading: FakeTrading) -> None:
    """A Confirm press is in the kill lane: it goes on with the handle Slack sends rather than wait for
    ``users.info``, and stores it while no name is on record. Its write landing after the looked-up name
    (another command of the same user, answered meanwhile) must leave that name. The order is forced with
    two replicas, as Slack spreads events over them: the name is stored through one before the press
    reaches the other, whose memory knows no name yet."""
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    first = await start_slack()
    await start_slack()
    prompt = await reply_to(fake_slack, "kill")
    for _ in range(20):  # the first answer may beat the lookup (it waits at most 0.5 s); a later one carries it
        if "Alice" in (await reply_to(fake_slack, "whoami")).readable():
            break
    names = first.dispatcher.access.names
    assert (await names.lookup())[("slack", ADMIN)] == "Alice"
    before = len(fake_slack.posted)
    await fake_slack.press(prompt, "🛑 Kill now", user=ADMIN, via=1)
    await eventually(lambda: len(fake_slack.posted) > before, what="the kill's result")
    assert [type(i).__name__ for i in trading.intents] == ["Kill"]
    assert (await names.lookup())[("slack", ADMIN)] == "Alice"  # not the handle u0alice001 the press carried
    roles = (await reply_to(fake_slack, "roles", user=ADMIN2)).readable()
    assert "Alice (slack:U0ALICE001)" in roles and "u0alice001" not in roles


async def test_button_presses_and_home_tab_carry_the_name(start_slack: StartSlack, fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.add_user(VIEWER, name="carol", display_name="Carol")
    adapter = await start_slack()
    ask = await reply_to(fake_slack, "close BTC/USD", user=TRADER)
    assert ask.buttons()
    await fake_slack.press(ask, "Close BTC/USD", user=ADMIN)  # another user's prompt: refused, but looked up
    # a Confirm press is in the kill lane: it does not wait for the name, which the next command carries;
    # whichever of the press's handle and whoami's name is stored last, the name stays
    await eventually(lambda: ADMIN in fake_slack.users_info_calls, what="the presser's lookup")
    await reply_to(fake_slack, "whoami", user=ADMIN)
    await fake_slack.open_home(user=VIEWER, channel=DM)
    await eventually(lambda: fake_slack.home_views(VIEWER), what="the home view")
    names = adapter.dispatcher.access.names

    async def both_named() -> bool:
        known = await names.lookup()
        return known.get(("slack", ADMIN)) == "Alice" and known.get(("slack", VIEWER)) == "Carol"

    for _ in range(100):
        if await both_named():
            break
        await asyncio.sleep(0.05)
    assert await both_named()
    assert sorted(fake_slack.users_info_calls) == sorted([TRADER, ADMIN, VIEWER])


# -- the lookup on its own, with a hand-moved clock -------------------------------------------------


def lookups(fake: FakeSlack, db: Database, clock: ManualClock) -> SlackNames:
    return SlackNames(AsyncWebClient(token=fake.bot_token, base_url=fake.api_base), DisplayNames(db, clock), clock)


async def test_a_name_is_asked_for_again_only_after_a_day(sqlite_db: Database, fake_slack: FakeSlack) -> None:
    clock = ManualClock()
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    names = lookups(fake_slack, sqlite_db, clock)
    assert await names.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice B.")
    clock.advance(DAY_S - 60)
    assert await names.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    assert fake_slack.users_info_calls == [ADMIN]
    clock.advance(120)
    assert await names.name(ADMIN, "alice.h") == ("Alice B.", PROFILE)
    assert fake_slack.users_info_calls == [ADMIN, ADMIN]
    await names.stop()


async def test_a_stored_name_younger_than_a_day_needs_no_call(sqlite_db: Database, fake_slack: FakeSlack) -> None:
    clock = ManualClock()
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    await DisplayNames(sqlite_db, clock).remember(Actor("slack", ADMIN, "Alice"))  # stored by an earlier run
    clock.advance(3600)
    restarted = lookups(fake_slack, sqlite_db, clock)
    assert await restarted.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    assert fake_slack.users_info_calls == []
    clock.advance(DAY_S)
    assert await restarted.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    assert fake_slack.users_info_calls == [ADMIN]  # a day old: asked again
    await restarted.stop()


async def test_a_name_slack_confirms_again_is_renewed_and_a_handle_cannot_replace_it(
        sqlite_db: Database, fake_slack: FakeSlack) -> None:
    """The name on record is a day old; users.info answers the same name; the record is renewed at once, so a
    kill-lane press's handle stored an hour later (another replica, which had not seen the name) leaves it."""
    clock = ManualClock()
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    await DisplayNames(sqlite_db, clock).remember(Actor("slack", ADMIN, "Alice"))
    clock.advance(DAY_S + 60)
    restarted = lookups(fake_slack, sqlite_db, clock)
    assert await restarted.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    assert fake_slack.users_info_calls == [ADMIN]  # a day old: asked again, and the answer is the same
    stored = await DisplayNames(sqlite_db, clock).stored("slack", ADMIN)
    assert stored is not None and stored.seen_at == clock.now()
    clock.advance(3600)
    await DisplayNames(sqlite_db, clock).remember(Actor("slack", ADMIN, "alice.h", HANDLE))
    assert await DisplayNames(sqlite_db, clock).lookup() == {("slack", ADMIN): "Alice"}
    await restarted.stop()


async def test_rate_limited_lookups_wait_for_retry_after(sqlite_db: Database, fake_slack: FakeSlack,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.add_user(TRADER, name="bob", display_name="Bob")
    fake_slack.users_info_429 = 1  # answered with Retry-After: 30
    names = lookups(fake_slack, sqlite_db, clock)
    with caplog.at_level(logging.WARNING, logger="tradectl.slack.names"):
        assert await names.name(ADMIN, "alice.h") == ("alice.h", HANDLE)
        assert await names.name(TRADER, "bob") == ("bob", HANDLE)  # nobody is asked about within the 30 s
        assert fake_slack.users_info_calls == [ADMIN]
        clock.advance(31)
        assert await names.name(TRADER, "bob") == ("Bob", PROFILE)
        assert await names.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    assert fake_slack.users_info_calls == [ADMIN, TRADER, ADMIN]
    assert [r.getMessage() for r in caplog.records if r.name == "tradectl.slack.names"] == [
        "slack users.info rate limited: no name lookups for 0:00:30"]
    await names.stop()


async def test_a_network_failure_leaves_the_handle_and_is_tried_again_later(sqlite_db: Database,
                                                                             fake_slack: FakeSlack) -> None:
    clock = ManualClock()
    fake_slack.add_user(ADMIN, name="alice.h", display_name="Alice")
    fake_slack.users_info_delay_s = 3.0  # longer than the client waits: a timeout
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_base, timeout=1)
    names = SlackNames(client, DisplayNames(sqlite_db, clock), clock, wait_s=5.0)
    assert await names.name(ADMIN, "alice.h") == ("alice.h", HANDLE)
    fake_slack.users_info_delay_s = 0.0
    assert await names.name(ADMIN, "alice.h") == ("alice.h", HANDLE)  # not asked again at once
    assert fake_slack.users_info_calls == [ADMIN]
    clock.advance(601)
    assert await names.name(ADMIN, "alice.h") == ("Alice", PROFILE)
    assert fake_slack.users_info_calls == [ADMIN, ADMIN]
    await names.stop()
