"""Confirmation prompts state the consequences at the moment of asking, and arguments are checked first."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from core.settings.settings_models import ChatSettings
from core.trading.views import StatusView
from persistence.db import Database
from tests.bot.conftest import ADMIN, BASE_SETTINGS, TRADER, MakeHarness
from tests.bot.fake_trading import FakeTrading, make_position
from tests.fakes.clock import ManualClock


class WithOrders(FakeTrading):
    """The fake with a number of resting orders in its status (the plain fake has none)."""

    def __init__(self, orders: int) -> None:
        super().__init__()
        self.orders = orders

    async def status(self) -> StatusView:
        return dataclasses.replace(await super().status(), open_orders=self.orders)


def berlin_harness(db: Database, services: FakeTrading, clock: ManualClock, **overrides: object) -> ChatHarness:
    settings = ChatSettings(**{**BASE_SETTINGS, **overrides})
    return ChatHarness(build_dispatcher(db, services, settings, clock=clock, timezone="Europe/Berlin"), actor=ADMIN)


async def test_kill_prompt_counts_what_it_closes_and_cancels_and_says_when_it_expires(db: Database) -> None:
    clock = ManualClock(datetime(2024, 1, 15, 13, 17, 30, tzinfo=UTC))
    fake = WithOrders(3)
    fake.open["ETH/USD"] = make_position("ETH/USD", qty="0.704", entry="2500", mark="2500")
    fake.open["SOL/USD"] = make_position("SOL/USD", qty="19.8", entry="100", mark="100")
    h = berlin_harness(db, fake, clock)
    asked = await h.send("/kill")
    text = asked.text
    assert "Closes 2 positions (ETH/USD 0.704, SOL/USD 19.8 ≈ 3,740.00 USD) at market and cancels 3 orders." in text
    assert "halted" in text and "/rearm" in text
    assert "Expires 14:18 CET (60 s)." in text  # 13:18:30 UTC in Berlin's winter time
    assert [b.label for b in asked.buttons] == ["🛑 Kill now", "Cancel"]
    assert [b.style for b in asked.buttons] == ["danger", "secondary"]
    assert fake.intents == []


async def test_kill_prompt_with_nothing_open_says_so(db: Database) -> None:
    h = berlin_harness(db, FakeTrading(), ManualClock())
    asked = await h.send("/kill")
    assert "Nothing is open: no positions to close, no orders to cancel." in asked.text
    assert asked.buttons[0].label == "🛑 Kill now"


async def test_two_person_kill_names_the_button_the_second_admin_presses(db: Database) -> None:
    h = berlin_harness(db, FakeTrading(), ManualClock(), two_person_commands=("kill",))
    asked = await h.send("/kill")
    assert "A second admin must press 🛑 Kill now" in asked.text


async def test_closeall_and_close_prompts_name_their_action(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/closeall")
    assert "Closes 2 positions (BTC/USD 0.5, ETH/USD 0.5 ≈ 41,000.00 USD) at market." in asked.text
    assert "New entries stay allowed" in asked.text
    assert asked.buttons[0].label == "Close all now"
    one = await h.send("/close btc/usd")
    assert "Closes BTC/USD 0.5 at market (≈ 20,500.00 USD, unrealized +500.00 USD (+2.50%))." in one.text
    assert one.buttons[0].label == "Close BTC/USD"
    await h.press(one.confirm_payload)
    assert fake.open.keys() == {"ETH/USD"}


async def test_close_without_a_position_is_refused_before_any_confirmation(make_harness: MakeHarness,
                                                                           fake: FakeTrading) -> None:
    h = await make_harness()
    refused = await h.send("/close SOL/USD", as_=TRADER)  # traded, but nothing open
    assert refused.has_style("error") and "No open position in SOL/USD" in refused.text
    assert refused.buttons == ()
    unknown = await h.send("/close DOGE/USD", as_=TRADER)  # not traded at all
    assert unknown.has_style("error") and "Unknown pair DOGE/USD" in unknown.text and unknown.buttons == ()
    assert fake.intents == []
    assert refused.reply is not None and refused.reply.private  # shown to the asker alone where possible


async def test_closeall_with_nothing_open_is_refused_at_once(make_harness: MakeHarness) -> None:
    h = await make_harness(services=FakeTrading())
    refused = await h.send("/closeall")
    assert refused.has_style("error") and "nothing to close" in refused.text and refused.buttons == ()


async def test_a_prompt_that_fails_still_asks(make_harness: MakeHarness, fake: FakeTrading) -> None:
    """A standby or a failing view never stops /kill from being asked: the prompt is then generic."""
    fake.fail_with = RuntimeError("engine busy")
    h = await make_harness()
    asked = await h.send("/kill")
    assert "Confirm /kill" in asked.text and "Expires" in asked.text
    assert [b.style for b in asked.buttons] == ["danger", "secondary"]
