"""Stale protection for every state-changing command, and input hygiene at the dispatcher's boundary."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app import build_dispatcher
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from tests.bot.conftest import BASE_SETTINGS, GROUP, TRADER, MakeHarness
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock

TWO_HOURS = timedelta(hours=2)


@pytest.mark.parametrize("text", ["/pause", "/resume", "/rearm", "/grant 8 admin", "/revoke 3", "/close BTC/USD",
                                  "/closeall", "/kill", "/report daily_report"])
async def test_every_state_changing_command_refuses_a_stale_message(make_harness: MakeHarness, fake: FakeTrading,
                                                                     clock: ManualClock, text: str) -> None:
    h = await make_harness()
    sent = await h.send(text, sent_at=clock.now() - TWO_HOURS)
    assert "sent more than 120 s ago" in sent.text and not sent.buttons, sent.text
    assert fake.intents == []
    assert "| 8 |" not in (await h.send("/roles all")).text
    assert [r.decision for r in await h.dispatcher.audit.recent(2)][1] == "stale"


async def test_stale_commands_are_configurable(make_harness: MakeHarness, fake: FakeTrading,
                                               clock: ManualClock) -> None:
    h = await make_harness(stale_commands=["/KILL", "close"])
    old = clock.now() - TWO_HOURS
    assert "entries paused" in (await h.send("/pause", sent_at=old)).text
    assert "sent more than" in (await h.send("/kill", sent_at=old)).text
    assert not (await h.send("/status", sent_at=old)).has_style("error")  # reads are never stale


def test_an_unknown_stale_command_is_a_configuration_error(db: Database) -> None:
    settings = ChatSettings(**{**BASE_SETTINGS, "stale_commands": ("kill", "kil")})
    with pytest.raises(ValueError, match=r"chat\.stale_commands: 'kil'"):
        build_dispatcher(db, FakeTrading(), settings)


async def test_a_lone_surrogate_does_not_break_kill(make_harness: MakeHarness, fake: FakeTrading) -> None:
    """``/kill bad\\ud800x`` used to fail the confirmation insert ("something went wrong")."""
    h = await make_harness()
    asked = await h.send("/kill bad\ud800x")
    assert asked.buttons, asked.text
    done = await h.press(asked.confirm_payload)
    assert "KILLED" in done.text
    assert fake.state == "killed" and fake.reason == "bad\ufffdx"


async def test_control_characters_never_reach_the_command_core(make_harness: MakeHarness,
                                                               fake: FakeTrading) -> None:
    h = await make_harness()
    sent = await h.send("/pause a\x00b \x1b]0;pwned\x07\x1b[2J \u202eevil \x85", as_=TRADER, chat=GROUP)
    assert "entries paused" in sent.text
    assert fake.reason == "a\ufffdb \ufffd]0;pwned\ufffd\ufffd[2J \ufffdevil \ufffd"
    status = (await h.send("/status")).text
    assert not any(ch in status for ch in "\x00\x1b\x07\u202e\x85")
    assert "\x00" not in (await h.dispatcher.audit.recent(5))[-1].args


async def test_a_payload_that_is_not_exactly_what_was_sent_does_nothing(make_harness: MakeHarness,
                                                                          fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/kill")
    for altered in [asked.confirm_payload + "\n", asked.confirm_payload + "\x00",
                    asked.confirm_payload[:-1] + "\ud800"]:
        refused = await h.press(altered)
        assert refused.text == "This button is not valid.", (altered, refused.text)
    assert fake.intents == []
    assert "KILLED" in (await h.press(asked.confirm_payload)).text
