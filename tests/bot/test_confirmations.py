"""Server-side confirmations: only the requester, only once, only in time; two-person rule; stale messages."""

from __future__ import annotations

from datetime import timedelta

from bot.confirmations import cancel_payload, confirm_payload, new_nonce
from tests.bot.conftest import ADMIN2, GROUP, TRADER, VIEWER, MakeHarness
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock


async def decisions(h, n: int = 50) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(r.command, r.decision) for r in reversed(await h.dispatcher.audit.recent(n))]


async def test_kill_asks_then_confirming_halts_and_flattens(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/kill")
    assert [b.label for b in asked.buttons] == ["🛑 Kill now", "Cancel"]
    assert all(len(b.payload.encode()) <= 64 for b in asked.buttons)
    assert fake.intents == []  # nothing happens before the press
    done = await h.press(asked.confirm_payload)
    assert "KILLED" in done.text
    assert "BTC/USD | 0.5 | 41,000.00" in done.text and "ETH/USD | 0.5 | 41,000.00" in done.text
    assert fake.state == "killed" and fake.open == {}
    refused = await h.send("/resume")
    assert refused.has_style("error") and "/rearm" in refused.text
    assert await decisions(h) == [("kill", "allowed"), ("kill", "confirmed"), ("resume", "failed")]


async def test_second_press_does_nothing(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/close BTC/USD")
    await h.press(asked.confirm_payload)
    again = await h.press(asked.confirm_payload)
    assert "already used" in again.text
    cancel_after = await h.press(asked.cancel_payload)
    assert "already used" in cancel_after.text
    assert fake.submitted() == ["ClosePosition"]
    assert (await decisions(h))[-2:] == [("close", "invalid"), ("close", "invalid")]


async def test_press_after_expiry(make_harness: MakeHarness, fake: FakeTrading, clock: ManualClock) -> None:
    h = await make_harness(confirm_ttl_s=60)
    asked = await h.send("/kill")
    clock.advance(61)
    late = await h.press(asked.confirm_payload)
    assert "expired" in late.text and "/kill again" in late.text
    assert fake.intents == []
    assert "already used (expired)" in (await h.press(asked.confirm_payload)).text
    assert (await decisions(h))[-2:] == [("kill", "expired"), ("kill", "invalid")]


async def test_press_just_inside_the_ttl_works(make_harness: MakeHarness, fake: FakeTrading,
                                               clock: ManualClock) -> None:
    h = await make_harness(confirm_ttl_s=60)
    asked = await h.send("/close ETH/USD")
    clock.advance(59)
    assert "ETH/USD | 0.5 | 41,000.00" in (await h.press(asked.confirm_payload)).text


async def test_only_the_requester_can_confirm_or_cancel(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/kill", chat=GROUP)
    for presser in (ADMIN2, TRADER, VIEWER):
        other = await h.press(asked.confirm_payload, as_=presser, chat=GROUP)
        assert "Only the person who asked" in other.text, presser
        other_cancel = await h.press(asked.cancel_payload, as_=presser, chat=GROUP)
        assert "Only the person who asked" in other_cancel.text
    assert fake.intents == []
    # The attempts by others did not use the confirmation up: the requester still can.
    assert "KILLED" in (await h.press(asked.confirm_payload, chat=GROUP)).text
    assert (await decisions(h)) == [("kill", "allowed"), *[("kill", "denied")] * 6, ("kill", "confirmed")]


async def test_press_from_another_chat_is_refused(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/kill", chat=GROUP)
    sent = await h.press(asked.confirm_payload)  # same admin, private chat
    assert "another chat" in sent.text
    assert fake.intents == []


FORGED = [
    confirm_payload(new_nonce()), cancel_payload(new_nonce()), "cf:", "cf:short", "cf:" + "A" * 60, "xx:" + "A" * 16,
    "cf:AAAAAAAAAAAAAAA=", "", "cf:../../etc/passwd", "cf:' OR 1=1 --",
]


async def test_forged_payloads_do_nothing(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/kill")  # a real pending confirmation exists meanwhile
    for payload in FORGED:
        sent = await h.press(payload)
        assert "not valid" in sent.text, payload
        assert (await decisions(h, 1))[-1] == ("(button)", "invalid")
    assert fake.intents == []
    assert "KILLED" in (await h.press(asked.confirm_payload)).text  # the real one is untouched


async def test_cancel(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.send("/closeall")
    assert "Cancelled /closeall" in (await h.press(asked.cancel_payload)).text
    assert "already used (cancelled)" in (await h.press(asked.confirm_payload)).text
    assert fake.intents == []
    assert await decisions(h) == [("closeall", "allowed"), ("closeall", "cancelled"), ("closeall", "invalid")]


async def test_role_revoked_before_the_press_wins(make_harness: MakeHarness, fake: FakeTrading) -> None:
    from bot.identity import Actor

    h = await make_harness()
    temp = Actor("telegram", "70")
    await h.send("/grant 70 trader")
    asked = await h.send("/close BTC/USD", as_=temp)
    await h.send("/revoke 70")
    sent = await h.press(asked.confirm_payload, as_=temp)
    assert sent.text == "Not authorized."
    assert fake.intents == []


async def test_two_person_rule(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness(two_person_commands=("kill",))
    asked = await h.send("/kill", chat=GROUP)
    assert "second admin" in asked.text
    assert "Self-approval is refused" in (await h.press(asked.confirm_payload, chat=GROUP)).text
    assert "Only an admin" in (await h.press(asked.confirm_payload, as_=TRADER, chat=GROUP)).text
    assert fake.intents == []
    done = await h.press(asked.confirm_payload, as_=ADMIN2, chat=GROUP)
    assert "KILLED" in done.text
    assert fake.intents[0].requested_by == "telegram:1"
    rows = await h.dispatcher.audit.recent(1)
    assert rows[0].decision == "confirmed" and rows[0].user_id == "4"
    assert "requested by telegram:1, approved by telegram:4" in rows[0].result
    assert "already used" in (await h.press(asked.confirm_payload, as_=ADMIN2, chat=GROUP)).text


async def test_confirmation_configurable_for_other_commands(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness(confirm_commands=("pause",))
    asked = await h.send("/pause lunch")
    assert asked.buttons and fake.intents == []
    await h.press(asked.confirm_payload)
    assert fake.state == "paused" and fake.reason == "lunch"  # the arguments travel with the nonce


async def test_stale_destructive_command_is_refused(make_harness: MakeHarness, fake: FakeTrading,
                                                    clock: ManualClock) -> None:
    h = await make_harness(stale_command_s=120)
    old = clock.now() - timedelta(seconds=121)
    for text in ["/kill", "/closeall", "/close BTC/USD"]:
        sent = await h.send(text, sent_at=old)
        assert "sent more than 120 s ago" in sent.text and not sent.buttons
    assert not (await h.send("/status", sent_at=old)).has_style("error")  # reading is harmless
    fresh = await h.send("/kill", sent_at=clock.now() - timedelta(seconds=119))
    assert fresh.buttons
    assert fake.intents == []
    assert [d for _, d in await decisions(h)][:3] == ["stale", "stale", "stale"]


async def test_console_is_exempt_from_two_person_rule(make_harness: MakeHarness, fake: FakeTrading) -> None:
    from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT

    h = await make_harness(two_person_commands=("kill",))
    done = await h.confirm("/kill", as_=CONSOLE_ACTOR, chat=CONSOLE_CHAT)
    assert "KILLED" in done.text


async def test_simultaneous_presses_execute_once(make_harness: MakeHarness, fake: FakeTrading) -> None:
    import asyncio

    h = await make_harness()
    asked = await h.send("/closeall")
    results = await asyncio.gather(*(h.press(asked.confirm_payload) for _ in range(5)))
    assert sum("Closed 2 positions" in r.text for r in results) == 1
    assert sum("already used" in r.text for r in results) == 4
    assert fake.submitted() == ["CloseAll"]
