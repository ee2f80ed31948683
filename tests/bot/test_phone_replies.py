"""Replies that read at a glance: local times, one number format, /status's first line, close and kill
results with totals, /close without a pair, paged /trades and /audit, /report answering with the report."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from core.ops.reports import DailyReport
from core.settings.settings_models import ChatSettings
from core.trading.intents import ClosedPosition, IntentResult, Kill, OpenItem
from core.trading.state import KILLED, PAUSED
from core.trading.views import JobOutcome, JobRunSummary, JobView, TradeView
from persistence.db import Database
from tests.bot.conftest import ADMIN, BASE_SETTINGS, GROUP, TRADER
from tests.bot.fake_trading import T0, FakeTrading, make_position
from tests.fakes.clock import ManualClock

BERLIN = "Europe/Berlin"
# an amount of 1 or more with more than two decimals (163.91069585, 4439.71000000): only crypto-quoted money has them
RAW_DECIMAL = re.compile(r"(?<![\d,.])[1-9]\d*\.\d{3,}(?!\d| BTC| ETH)")


def harness(db: Database, fake: FakeTrading, clock: ManualClock, tz: str = BERLIN, **overrides: object) -> ChatHarness:
    settings = ChatSettings(**{**BASE_SETTINGS, **overrides})  # type: ignore[arg-type]
    return ChatHarness(build_dispatcher(db, fake, settings, clock=clock, timezone=tz), actor=ADMIN)


def text(sent: object) -> str:
    return sent.reply.plain_text() if sent.reply is not None else ""  # type: ignore[attr-defined]


def coins() -> FakeTrading:
    """Five positions from PEPE to BTC, USD-quoted."""
    fake = FakeTrading(pairs=("PEPE/USD", "SHIB/USD", "XRP/USD", "SOL/USD", "BTC/USD"))
    for pair, qty, entry, mark in (("PEPE/USD", "125000000", "0.00000812", "0.00000845"),
                                   ("SHIB/USD", "40000000", "0.00002312", "0.00002290"),
                                   ("XRP/USD", "1500", "0.52345", "0.53120"),
                                   ("SOL/USD", "19.8", "142.37", "145.10"),
                                   ("BTC/USD", "0.015", "64000.5", "64500.25")):
        fake.open[pair] = make_position(pair, qty, entry, mark)
    return fake


# --- local time ------------------------------------------------------------------------------------


async def test_times_in_replies_are_local_to_the_service_time_zone(db: Database, clock: ManualClock) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD")
    h = harness(db, fake, clock)
    today = text(await h.send("/pnl today"))
    assert "since 2024-01-01 13:00 CET" in today and "UTC" not in today  # T0 is 12:00 UTC
    await h.send("/pause lunch")
    status = text(await h.send("/status"))
    assert "Paused since 13:00 CET by alice (telegram:1): lunch" in status
    audit = text(await h.send("/audit 5"))
    assert "13:00 CET" in audit and "12:00" not in audit
    fake.closed.append(TradeView(pair="BTC/USD", qty=Decimal("0.5"), entry_price=Decimal(40000),
                                 exit_price=Decimal(41000),
                                 pnl=Decimal(500), pnl_pct=Decimal("2.5"), fees=Decimal(0), opened_at=T0,
                                 closed_at=datetime(2023, 12, 31, 23, 30, tzinfo=UTC),
                                 exit_reason="closed by telegram:1"))
    trades = text(await h.send("/trades"))
    assert "00:30 CET" in trades  # 23:30 UTC on New Year's Eve is already the 1st in Berlin (today)



async def test_schedule_shows_next_runs_in_local_time(db: Database, clock: ManualClock) -> None:
    class Scheduled(FakeTrading):
        async def schedule(self):  # type: ignore[no-untyped-def]
            return ([JobView("daily_report", "daily 08:00", datetime(2024, 1, 2, 7, 0, tzinfo=UTC))],
                    [JobRunSummary("daily_report", datetime(2024, 1, 1, 7, 0, tzinfo=UTC), "finished")])

    shown = text(await harness(db, Scheduled(), clock).send("/schedule"))
    assert "daily_report | daily 08:00 | 2 Jan 08:00 CET" in shown  # not "07:00 UTC" beside "daily 08:00"
    assert "daily_report | 08:00 CET | finished" in shown


# --- numbers ---------------------------------------------------------------------------------------


async def test_positions_from_pepe_to_btc_show_every_digit_that_matters(db: Database, clock: ManualClock) -> None:
    h = harness(db, coins(), clock)
    shown = text(await h.send("/positions"))
    for expected in ("PEPE/USD | 125,000,000 | 0.00000812 | 0.00000845 | +41.25 |",
                     "SHIB/USD | 40,000,000 | 0.00002312 | 0.0000229 | -8.80 |",
                     "XRP/USD | 1,500 | 0.52345 | 0.5312 | +11.63 |",
                     "SOL/USD | 19.8 | 142.37 | 145.10 | +54.05 |",
                     "BTC/USD | 0.015 | 64,000.50 | 64,500.25 | +7.50 |"):
        assert expected in shown, (expected, shown)
    assert "Open positions (5), PnL in USD" in shown
    assert "unrealized +105.63 USD" in shown  # 41.25 - 8.80 + 11.625 + 54.054 + 7.5
    assert not RAW_DECIMAL.search(shown), shown


async def test_a_btc_quoted_account_counts_in_satoshis(db: Database, clock: ManualClock) -> None:
    class BtcQuoted(FakeTrading):
        async def status(self):  # type: ignore[no-untyped-def]
            view = await super().status()
            from dataclasses import replace

            return replace(view, quote="BTC", equity=Decimal("0.51234567"), today_pnl=Decimal("0.00012345"),
                           today_pnl_pct=Decimal("0.02"), unrealized=Decimal("0.00001"))

    fake = BtcQuoted(pairs=("ETH/BTC",))
    fake.open["ETH/BTC"] = make_position("ETH/BTC", "1.5", "0.05123", "0.05124")
    h = harness(db, fake, clock)
    status = text(await h.send("/status"))
    assert status.splitlines()[0] == ("🟢 Running · equity 0.51234567 BTC · today +0.00012345 BTC (+0.02%) · "
                                      "unrealized +0.00001000 BTC")
    assert "ETH/BTC | 1.5 | +0.00001500 (+0.02%)" in status and "PnL in BTC" in status


# --- /status ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "mark", "style"), [("running", "🟢 Running", "plain"), (PAUSED, "⏸ Paused",
                                                                                          "warning"),
                                                      (KILLED, "🛑 Killed", "error")])
async def test_status_first_line_is_state_equity_today_and_unrealized(db: Database, clock: ManualClock, state: str,
                                                                      mark: str, style: str) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD", "ETH/USD")
    fake.state, fake.changed_at, fake.changed_by = state, T0, "telegram:2"
    reply = (await harness(db, fake, clock).send("/status")).reply
    assert reply is not None
    first = reply.blocks[0]
    assert first.text == f"{mark} · equity 11,000.00 USD · today +1,000.00 USD (+10.00%) · unrealized +1,000.00 USD"  # type: ignore[union-attr]
    assert first.style == style  # type: ignore[union-attr]  # Discord colours the embed by it
    shown = reply.plain_text()
    assert "leader" not in shown and "instance" not in shown and "uptime" not in shown
    if state == KILLED:
        assert "An admin must /rearm, then /resume." in shown


# --- close and kill results ------------------------------------------------------------------------


async def test_kill_lists_what_it_closed_with_totals(db: Database, clock: ManualClock) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD", "ETH/USD")
    shown = text(await harness(db, fake, clock).confirm("/kill"))
    assert shown.startswith("🛑 Trading is KILLED: closed 2 positions.")
    for expected in ("BTC/USD | 0.5 | 41,000.00 | +500.00 USD (+2.50%)", "closed: 2 positions", "value: 41,000.00 USD",
                     "realized PnL: +1,000.00 USD", "fees: 82.00 USD",
                     "Trading stays halted until an admin sends /rearm"):
        assert expected in shown, (expected, shown)
    assert not RAW_DECIMAL.search(shown)


async def test_a_kill_with_nothing_open_says_so_plainly(db: Database, clock: ManualClock) -> None:
    shown = text(await harness(db, FakeTrading(), clock).confirm("/kill"))
    assert shown.startswith("🛑 Trading is KILLED. Nothing was open: no positions to close, no orders to cancel.")
    assert "after -" not in shown and "acknowledged" not in shown


async def test_an_incomplete_kill_names_what_is_still_open(db: Database, clock: ManualClock) -> None:
    class Stuck(FakeTrading):
        async def submit(self, intent):  # type: ignore[no-untyped-def]
            if isinstance(intent, Kill):
                closed = ClosedPosition(pair="BTC/USD", qty=Decimal("0.5"), exit_price=Decimal(41000), pnl=Decimal(500),
                                        fees=Decimal(41))
                return IntentResult(False, "killed, but NOT everything is flat yet", ("STILL OPEN: 19.8 SOL/USD",),
                                    closed=(closed,), pending=(OpenItem(pair="SOL/USD", qty=Decimal("19.8")),))
            return await super().submit(intent)

    sent = await harness(db, Stuck(), clock).confirm("/kill")
    shown = text(sent)
    assert sent.has_style("error")
    assert "NOT everything is flat yet (closed 1 position)" in shown and "Still open: SOL/USD 19.8." in shown
    assert "Send /kill again" in shown


async def test_closeall_lists_positions_with_totals_and_exits_still_waiting(db: Database, clock: ManualClock) -> None:
    class Slow(FakeTrading):
        async def submit(self, intent):  # type: ignore[no-untyped-def]
            result = await super().submit(intent)
            from dataclasses import replace

            return replace(result, closed=result.closed[:1], pending=(OpenItem(pair="ETH/USD", qty=Decimal("0.5")),))

    fake = Slow()
    fake.add_positions("BTC/USD", "ETH/USD")
    shown = text(await harness(db, fake, clock).confirm("/closeall"))
    assert shown.startswith("Closed 1 position. 1 exit sent, waiting for the fill.")
    assert "BTC/USD | 0.5 | 41,000.00 | +500.00 USD (+2.50%)" in shown and "value: 20,500.00 USD" in shown
    assert "Waiting for the fill: ETH/USD 0.5." in shown


async def test_close_without_a_pair_lists_the_open_positions_without_asking(db: Database, clock: ManualClock) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD", "ETH/USD")
    h = harness(db, fake, clock, trader_pairs={"telegram:2": ("ETH/USD",)})
    sent = await h.send("/close")
    # nothing to confirm: it only lists, with a button per pair that runs /close <pair>
    assert [b.payload for b in sent.buttons] == ["run:close BTC/USD", "run:close ETH/USD"] and fake.intents == []
    assert "BTC/USD | 0.5 | +500.00 USD" in text(sent) and "Send /close BTC/USD" in text(sent)
    mine = text(await h.send("/close", as_=TRADER))
    assert "ETH/USD" in mine and "BTC/USD" not in mine  # a trader sees the pairs they may close
    fake.open.clear()
    assert text(await h.send("/close")) == "No open positions to close."


# --- paging ----------------------------------------------------------------------------------------


async def test_trades_and_audit_pages_say_how_to_get_the_next(db: Database, clock: ManualClock) -> None:
    fake = FakeTrading()
    for n in range(25):
        fake.closed.append(TradeView(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100),
                                     exit_price=Decimal(101 + n),
                                     pnl=Decimal(1 + n), pnl_pct=Decimal(1), fees=Decimal(0), opened_at=T0,
                                     closed_at=T0,
                                     exit_reason="stop"))
    h = harness(db, fake, clock)
    first = (await h.send("/trades 10")).reply
    assert first is not None and first.blocks[0].more == "Older trades: /trades 10 2"  # type: ignore[union-attr]
    second = text(await h.send("/trades 10 2"))
    assert "Closed trades 11-20" in second and "+15.00 USD" in second and "+25.00 USD" not in second
    last = (await h.send("/trades 10 3")).reply
    assert last is not None and len(last.blocks[0].rows) == 5 and not last.blocks[0].more  # type: ignore[union-attr]
    for _ in range(12):
        await h.send("/whoami", chat=GROUP)
    audit = (await h.send("/audit 5", chat=GROUP)).reply
    assert audit is not None and audit.blocks[0].more == "Older entries: /audit 5 2"  # type: ignore[union-attr]
    older = text(await h.send("/audit 5 3", chat=GROUP))
    assert "Audit log of this chat, 11-" in older


# --- /report ---------------------------------------------------------------------------------------


async def test_report_answers_with_the_report_and_its_chart(db: Database, clock: ManualClock) -> None:
    class WithReports(FakeTrading):
        async def run_job(self, name: str) -> JobOutcome:
            start = datetime(2023, 12, 31, 23, 0, tzinfo=UTC)
            report = DailyReport(ts=T0, period="day", label="Sun 2023-12-31", start=start, end=T0, timezone=BERLIN,
                                 quote="USD", realized=Decimal("163.91069585"), unrealized=Decimal("-4"),
                                 fees=Decimal("16.075857"), trades=3, wins=2, losses=1, win_rate=Decimal("0.6667"),
                                 best_pair="BTC/USD", best_pnl=Decimal(170), worst_pair="ETH/USD",
                                 worst_pnl=Decimal(-6),
                                 max_drawdown=Decimal("12.5"), max_drawdown_pct=Decimal("0.12"),
                                 equity_start=Decimal(10000), equity_end=Decimal("10163.91"),
                                 image_png=b"\x89PNG chart")
            return JobOutcome("finished", (report,))

    reply = (await harness(db, WithReports(), clock).send("/report daily_report")).reply
    assert reply is not None
    shown = reply.plain_text()
    assert "Daily PnL report: Sun 2023-12-31" in shown and "finished" not in shown
    for expected in ("realized: +163.91 USD", "fees: 16.08 USD", "trades: 3: 2 won, 1 lost, win rate 66.7%",
                     "equity: 10,000.00 USD -> 10,163.91 USD"):
        assert expected in shown, (expected, shown)
    assert [b.png for b in reply.blocks if hasattr(b, "png")] == [b"\x89PNG chart"]
    assert not RAW_DECIMAL.search(shown)
