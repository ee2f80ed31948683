"""A confirmed command is on record from the press: a crash cannot lose it, a standby cannot waste it."""

from __future__ import annotations

import asyncio

from bot.audit import AuditLog
from core.app.standby import LeaderBoundService
from core.trading.confirmed import unfinished
from core.trading.intents import Intent, IntentResult
from persistence.db import Database
from persistence.models import ConfirmationRow
from tests.bot.conftest import ADMIN, MakeHarness
from tests.bot.fake_trading import FakeTrading


class StallingTrading(FakeTrading):
    """The trading core of a process about to die: it takes the intent and never applies it."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = asyncio.Event()

    async def submit(self, intent: Intent) -> IntentResult:
        self.intents.append(intent)
        self.reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _confirmation(db: Database, nonce: str) -> ConfirmationRow:
    async with db.read() as s:
        row = await s.get(ConfirmationRow, nonce)
    assert row is not None
    return row


async def test_kill_interrupted_after_the_press_is_still_on_record(db: Database, make_harness: MakeHarness) -> None:
    """The process dies between the Confirm press and the engine persisting `killed` (issue 13 case 1):
    the confirmation is used up, but it is the record the engine completes the kill from on start."""
    stalling = StallingTrading()
    h = await make_harness(services=stalling)
    asked = await h.send("/kill market on fire")
    press = asyncio.create_task(h.press(asked.confirm_payload))
    await asyncio.wait_for(stalling.reached.wait(), 10)
    press.cancel()  # the process is gone: nothing after this line runs
    await asyncio.gather(press, return_exceptions=True)

    found = await unfinished(db, ("kill", "close", "closeall"))
    assert [(r.nonce, r.command, r.tokens, r.requested_by) for r in found] == [
        (asked.nonce, "kill", ("market", "on", "fire"), ADMIN.key)]
    rows = await AuditLog(db, h.dispatcher.clock).recent(5)
    assert (rows[0].command, rows[0].decision, rows[0].result) == ("kill", "confirmed", "started")


async def test_a_finished_confirmed_command_is_marked_executed(db: Database, make_harness: MakeHarness,
                                                              fake: FakeTrading) -> None:
    h = await make_harness()
    ask_close = await h.send("/close BTC/USD")  # asked while the position is open ...
    ask_kill = await h.send("/kill")
    await h.press(ask_kill.confirm_payload)  # ... and gone (the kill closed it) when confirmed
    refused = await h.press(ask_close.confirm_payload)  # no such position: the command ran and failed
    assert fake.state == "killed" and refused.has_style("error")
    assert await unfinished(db, ("kill", "close")) == []
    kill_row = await _confirmation(db, ask_kill.nonce)
    close_row = await _confirmation(db, ask_close.nonce)
    assert (kill_row.outcome, kill_row.result) == ("confirmed", "/kill done") and kill_row.executed_at is not None
    assert (close_row.outcome, close_row.result) == ("confirmed", "/close failed")


async def test_press_on_a_standby_keeps_the_confirmation(db: Database, make_harness: MakeHarness,
                                                        fake: FakeTrading) -> None:
    """Issue 13 case 9: a press that arrives while this instance is a standby would only be refused;
    it must not use the confirmation up, so the same button works once this instance leads."""
    leading: list[FakeTrading] = []
    service = LeaderBoundService(fake.pairs, lambda: leading[0] if leading else None, lambda: None)  # type: ignore[arg-type,return-value]
    h = await make_harness(services=service)
    asked = await h.send("/kill")
    on_standby = await h.press(asked.confirm_payload)
    assert on_standby.has_style("error") and "standby" in on_standby.text and "still valid" in on_standby.text
    assert fake.intents == []
    row = await _confirmation(db, asked.nonce)
    assert row.used_at is None and row.outcome == ""
    assert await unfinished(db, ("kill",)) == []

    leading.append(fake)  # elected
    done = await h.press(asked.confirm_payload)
    assert "KILLED" in done.text and fake.state == "killed"
    assert (await _confirmation(db, asked.nonce)).result == "/kill done"
