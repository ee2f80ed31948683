"""The dispatcher's middleware and failure handling: duplicates, floods, unknown input, failures, audit."""

from __future__ import annotations

import logging

import pytest

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT
from core.settings.settings_models import ChatSettings
from core.trading.state import StateStore
from persistence.db import Database
from tests.bot.conftest import ADMIN, BASE_SETTINGS, GROUP, STRANGER, TRADER, VIEWER, MakeHarness
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock


async def test_redelivered_update_is_not_executed_twice(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    first = await h.send("/pause", update_id="1001")
    assert "paused" in first.text
    again = await h.send("/pause", update_id="1001")
    assert again.silent
    asked = await h.send("/close BTC/USD", update_id="1002")
    await h.press(asked.confirm_payload, update_id="1003")
    assert (await h.press(asked.confirm_payload, update_id="1003")).silent
    assert fake.submitted() == ["PauseEntries", "ClosePosition"]
    # Another platform's update with the same id is a different update.
    assert not (await h.send("/status", as_=CONSOLE_ACTOR, chat=CONSOLE_CHAT, update_id="1001")).silent
    rows = await h.dispatcher.audit.recent(10)
    assert sum(r.decision == "duplicate" for r in rows) == 2


async def test_long_update_ids_are_hashed_not_truncated_into_collisions(make_harness: MakeHarness,
                                                                       fake: FakeTrading) -> None:
    h = await make_harness()
    base = "x" * 80
    assert not (await h.send("/pause", update_id=base + "a")).silent
    assert not (await h.send("/resume", update_id=base + "b")).silent
    assert (await h.send("/resume", update_id=base + "b")).silent


async def test_epoch_is_recorded_with_the_update(make_harness: MakeHarness, db: Database) -> None:
    from persistence.models import ProcessedUpdateRow

    h = await make_harness()
    await h.send("/status", update_id="77", epoch=5)
    async with db.session() as s:
        row = await s.get(ProcessedUpdateRow, ("telegram", "77"))
    assert row is not None and row.epoch == 5


async def test_rate_limit_per_actor(make_harness: MakeHarness, clock: ManualClock) -> None:
    h = await make_harness(rate_limit_per_minute=5)
    for _ in range(5):
        assert not (await h.send("/status", as_=VIEWER)).has_style("error")
    limited = await h.send("/status", as_=VIEWER)
    assert "Too many commands" in limited.text
    assert (await h.send("/nonsense", as_=VIEWER)).silent  # told once, then silence: no reply flood
    assert not (await h.send("/status", as_=TRADER)).has_style("error")  # others are not affected
    clock.advance(60)
    assert not (await h.send("/status", as_=VIEWER)).has_style("error")
    await h.dispatcher.flush()
    rows = await h.dispatcher.audit.recent(20, user_id="3")
    # The flood is audited in aggregate: one row for the minute, counting both refused attempts.
    assert [r.attempts for r in rows if r.decision == "rate_limited"] == [2]


async def test_unknown_command_suggests_the_nearest(make_harness: MakeHarness) -> None:
    h = await make_harness()
    sent = await h.send("/stauts")
    assert "Unknown command /stauts. Did you mean /status?" in sent.text
    assert "Did you mean /kill" not in (await h.send("/kil", as_=VIEWER)).text  # only what the role may run
    assert "Did you mean /kill?" in (await h.send("/kil")).text
    assert "Did you mean" not in (await h.send("/zzzzzzzz")).text
    weird = await h.send("/<script>alert(1)</script>")
    assert weird.text.startswith("Unknown command.") and "<script>" not in weird.text
    assert (await h.send("hello there")).silent  # not a command at all: no reply, no audit


async def test_usage_errors_show_the_usage(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    cases = {
        "/revoke": "missing <user>",
        "/close bitcoin": "a pair is written BASE/QUOTE",
        "/close BTC/USD now": "too many arguments",
        "/daily 0": "n must be a whole number from 1 to 90",
        "/daily 1e9": "n must be a whole number",
        "/trades ٣": "n must be a whole number",
        "/pnl year": "period must be one of all, today, week, month",
        "/status now": "/status takes no arguments",
        "/grant 5": "missing <viewer|trader|admin>",
    }
    for text, message in cases.items():
        sent = await h.send(text)
        assert message in sent.text, (text, sent.text)
        assert "usage: /" in sent.text
    assert fake.intents == []
    rows = await h.dispatcher.audit.recent(len(cases))
    assert {r.decision for r in rows} == {"invalid"}


async def test_unknown_pair_is_a_clear_error(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    sent = await h.send("/close DOGE/USD")  # refused at once: nothing to confirm
    assert "Unknown pair DOGE/USD; traded pairs: BTC/USD, ETH/USD, SOL/USD" in sent.text and sent.buttons == ()
    assert fake.intents == []


async def test_internal_failure_gives_a_reference_not_a_traceback(make_harness: MakeHarness, fake: FakeTrading,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    h = await make_harness()
    fake.fail_with = RuntimeError("connection to postgresql://bot:hunter2@db failed")
    with caplog.at_level(logging.ERROR, logger="tradectl.bot.dispatcher"):
        sent = await h.send("/status")
    rows = await h.dispatcher.audit.recent(1)
    ref = rows[0].ref_id
    assert sent.text == f"Something went wrong, reference {ref}."
    assert "hunter2" not in sent.rendered and "Traceback" not in sent.rendered
    assert rows[0].decision == "failed" and rows[0].result == "internal error RuntimeError"
    record = next(r for r in caplog.records if ref in r.getMessage())
    assert record.exc_info is not None  # the traceback goes to the log (redacted by the logging setup)


async def test_every_attempt_is_audited_before_the_reply(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness(rate_limit_per_minute=100)
    script = [
        ("/status", VIEWER), ("/pause", VIEWER), ("/pause", TRADER), ("/kill", STRANGER), ("/nope", ADMIN),
        ("/daily x", ADMIN), ("/resume", TRADER), ("/kill", ADMIN),
    ]
    audited_before: list[int] = []
    for text, actor in script:
        sent = await h.send(text, as_=actor)
        audited_before.append(len(await h.dispatcher.audit.recent(100)))
        assert sent.reply is not None
    assert audited_before == list(range(1, len(script) + 1))  # one row per attempt, present when the reply is
    rows = list(reversed(await h.dispatcher.audit.recent(100)))
    assert [(r.user_id, r.command, r.decision) for r in rows] == [
        ("3", "status", "allowed"), ("3", "pause", "denied"), ("2", "pause", "allowed"), ("666", "kill", "denied"),
        ("1", "nope", "unknown"), ("1", "daily", "invalid"), ("2", "resume", "allowed"), ("1", "kill", "allowed"),
    ]
    assert all(r.ref_id and r.chat_id and r.platform == "telegram" for r in rows)
    audit = await h.send("/audit 3")
    assert "kill" in audit.text and "awaiting confirmation" in audit.text


async def test_audit_never_stores_credentials(make_harness: MakeHarness) -> None:
    h = await make_harness()
    await h.send("/pause token=123456:ABCdefGhIJKlmNoPQRsTUVwxyZ123456789 oops")
    row = (await h.dispatcher.audit.recent(1))[0]
    assert "ABCdef" not in row.args and "[redacted]" in row.args


async def test_pause_survives_a_restart(db: Database, clock: ManualClock) -> None:
    settings = ChatSettings(**BASE_SETTINGS)
    first = ChatHarness(build_dispatcher(db, await FakeTrading(state_store=StateStore(db, "g")).load(), settings,
                                         clock=clock), actor=ADMIN)
    await first.send("/pause before the news")
    # A new process: new dispatcher, new service, same database.
    restarted = await FakeTrading(state_store=StateStore(db, "g")).load()
    second = ChatHarness(build_dispatcher(db, restarted, settings, clock=clock), actor=ADMIN)
    status = await second.send("/status")
    assert status.text.startswith("⏸ Paused · equity")
    assert "Paused since" in status.text and "by alice (telegram:1): before the news" in status.text
    assert "/resume to trade" in status.text


async def test_status_shows_what_the_operator_needs(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    text = (await h.send("/status", chat=GROUP)).text
    first, *rest = text.splitlines()
    assert first == "🟢 Running · equity 11,000.00 USD · today +1,000.00 USD (+10.00%) · unrealized +1,000.00 USD"
    for expected in ["mode: paper on fake", "open orders: 0", "market data: 12s old", "Open positions (2), PnL in USD",
                     "BTC/USD | 0.5 | +500.00 (+2.50%)"]:
        assert expected in rest, (expected, text)
    assert "fake-1" not in text and "uptime" not in text  # infrastructure is /health's
    health = (await h.send("/health", chat=GROUP)).text
    assert "leader: fake-1 (epoch 1)" in health and "uptime: 1h 00m" in health


class AuditCheckingTrading(FakeTrading):
    """Looks at the audit log while an intent is being applied."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.seen: list[str] = []

    async def submit(self, intent):  # type: ignore[no-untyped-def]
        from bot.audit import AuditLog

        rows = await AuditLog(self.db, ManualClock()).recent(1)
        self.seen.append(f"{rows[0].command}:{rows[0].decision}:{rows[0].result}")
        return await super().submit(intent)


async def test_state_changes_are_audited_before_they_run(db: Database, clock: ManualClock) -> None:
    trading = AuditCheckingTrading(db)
    trading.add_positions("BTC/USD")
    h = ChatHarness(build_dispatcher(db, trading, ChatSettings(**BASE_SETTINGS), clock=clock), actor=ADMIN)
    await h.send("/pause")
    await h.confirm("/kill")
    assert trading.seen == ["pause:allowed:started", "kill:confirmed:started"]
    rows = await h.dispatcher.audit.recent(2)
    assert [(r.command, r.decision) for r in rows] == [("kill", "confirmed"), ("kill", "allowed")]
    assert "KILLED" in rows[0].result
