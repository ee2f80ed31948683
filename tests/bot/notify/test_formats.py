"""Alerts per event kind: what each says, in the one number format and local time, and how each platform
renders it natively (Telegram HTML, a Discord embed coloured by severity, Slack blocks)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy.exc import OperationalError

from bot.notify.dispatcher import OutboxDispatcher
from bot.notify.formats import Style, format_event, from_event, from_payload
from bot.notify.senders import AlertMessage, discord_embed, slack_blocks, telegram_html_text
from core.ops.outbox import OutboxWriter
from core.ops.reports import DailyReport
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import (
    AutoPaused,
    EngineError,
    Event,
    Killed,
    LeadershipChanged,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    StateChanged,
)
from core.trading.intents import ClosedPosition, OpenItem

AT = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
BERLIN = Style(timezone="Europe/Berlin", names={"telegram:1": "alice"})
RAW = re.compile(r"(?<![\d,.])[1-9]\d*\.\d{3,}(?!\d)")  # 163.91069585, 16.07585700: not how amounts are shown


def stored(event: Event, style: Style = BERLIN) -> tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The alert as the dispatcher makes it from the outbox row (JSON: amounts as strings)."""
    settings = NotifySettings(destinations=(Destination(name="ops", platform="telegram", target="1"),),
                              events={})
    (row,) = OutboxWriter(settings).rows_for(event)
    alert = from_payload(json.loads(row.payload), style, now=AT)
    text = "\n".join(alert.text_lines())
    assert not RAW.search(text), text
    return alert.title, alert.lines, alert.fields


def test_a_close_shows_signed_pnl_with_percent_in_the_quote_and_why_in_plain_words() -> None:
    closed = PositionClosed(pair="BTC/USD", qty=D("0.25"), entry_price=D("64000"), exit_price=D("64655.64278340"),
                            fees=D("16.07585700"), pnl=D("163.91069585"), pnl_pct=D("1.02"),
                            reason="price 64655.64278340 >= target 64650.00000000", ts=AT)
    title, lines, fields = stored(closed)
    assert title == "Closed BTC/USD: +163.91 USD (+1.02%)"
    assert lines == ("take-profit 64,650.00 reached (price 64,655.64)", "sold 0.25 @ 64,655.64 (entry 64,000.00)")
    assert fields == (("fees", "16.08 USD"),)
    by_hand = stored(PositionClosed(pair="PEPE/USD", qty=D("125000000"), entry_price=D("0.00000812"),
                                    exit_price=D("0.00000845"), fees=D("2.07"), pnl=D("39.18"), pnl_pct=D("3.86"),
                                    reason="closed by telegram:1", ts=AT))
    assert by_hand[1] == ("closed by alice (telegram:1)", "sold 125,000,000 @ 0.00000845 (entry 0.00000812)")


def test_strategy_internals_only_at_the_verbose_level() -> None:
    opened = PositionOpened(pair="SOL/USD", qty=D("19.8"), price=D("142.37"), fee=D("0.7325"), stop=D("138.1"),
                            reason="score +0.20 >= 0.2: mean_reversion buy 1.00x1", ts=AT)
    title, lines, fields = stored(opened)
    assert title == "Opened SOL/USD: bought 19.8 @ 142.37" and lines == ()
    assert fields == (("value", "2,818.93 USD"), ("fee", "0.73 USD"), ("stop", "138.10"))
    assert stored(opened, Style(verbose=True))[1] == ("signal: score +0.20 >= 0.2: mean_reversion buy 1.00x1",)
    exit_ = PositionClosed(pair="SOL/USD", qty=D("19.8"), entry_price=D("142.37"), exit_price=D("140"), fees=D("1.4"),
                           pnl=D("-48.33"), pnl_pct=D("-1.71"), reason="score -0.31 <= -0.2: trend sell", ts=AT)
    assert stored(exit_)[1][0] == "strategy exit"
    assert stored(exit_, Style(verbose=True))[1][0] == "strategy exit: score -0.31 <= -0.2: trend sell"


def test_fills_pauses_and_state_changes() -> None:
    fill = OrderFilled(pair="ETH/BTC", side="buy", qty=D("1.5"), price=D("0.05123"), fee=D("0.00011527"),
                       fee_currency="BTC", partial=False, client_order_id="tc-1-abc", ts=AT)
    assert stored(fill) == ("Filled: buy 1.5 ETH/BTC @ 0.05123", (),
                            (("value", "0.07684500 BTC"), ("fee", "0.00011527 BTC")))
    assert stored(AutoPaused(reason="daily loss 5.12% reached the limit 5.00%", ts=AT))[:2] == (
        "⏸ Entries paused automatically", ("daily loss 5.12% reached the limit 5.00%",
                                           "open positions keep their stops; /resume when satisfied"))
    paused = StateChanged(state="paused", previous="running", by="telegram:1", reason="news at 14:30", ts=AT)
    assert stored(paused)[:2] == ("⏸ Entries paused by alice (telegram:1)", ("reason: news at 14:30",))
    assert stored(StateChanged(state="running", previous="paused", by="telegram:1", reason="resumed", ts=AT))[:2] == (
        "🟢 Trading resumed by alice (telegram:1)", ())


def test_a_kill_lists_what_it_closed_with_totals_or_says_nothing_was_open() -> None:
    closed = (ClosedPosition(pair="ETH/USD", qty=D("0.704"), exit_price=D("3120.5"), pnl=D("12.3456"), fees=D("4.4"),
                             pnl_pct=D("0.56")),
              ClosedPosition(pair="SOL/USD", qty=D("19.8"), exit_price=D("145.1"), pnl=D("-3.1"), fees=D("2.87")))
    cancelled = (OpenItem(pair="SOL/USD", qty=D("5"), what="order", side="buy", purpose="entry"),)
    title, lines, fields = stored(Killed(by="telegram:1", complete=True, closed=closed, cancelled=cancelled, ts=AT))
    assert title == "🛑 Kill switch by alice (telegram:1): 2 positions closed, 1 order cancelled"
    assert lines == ("ETH/USD 0.704 @ 3,120.50: +12.35 USD", "SOL/USD 19.8 @ 145.10: -3.10 USD",
                     "trading stays halted until an admin sends /rearm")
    assert fields == (("closed", "2"), ("value", "5,069.81 USD"), ("realized PnL", "+9.25 USD"), ("fees", "7.27 USD"))
    nothing = stored(Killed(by="console:local", complete=True, ts=AT))
    assert nothing[0] == "🛑 Kill switch by the console operator: nothing was open"
    assert "after -" not in " ".join(nothing[1])
    stuck = stored(Killed(by="telegram:1", complete=False, left=(OpenItem(pair="SOL/USD", qty=D("19.8")),), ts=AT))
    assert "NOT flat yet: position 19.8 SOL/USD (send /kill again to retry)" in stuck[1]


def test_leadership_changes_in_plain_words() -> None:
    took = LeadershipChanged(instance_id="vm-1:4242:ab12cd", leader=True, epoch=7, ts=AT)
    assert stored(took)[:2] == ("This server (vm-1) took over trading", ())
    left = stored(LeadershipChanged(instance_id="vm-1:4242:ab12cd", leader=False, epoch=7, ts=AT))
    assert left[0] == "This server (vm-1) stopped trading" and "epoch" not in " ".join(left[1])
    assert stored(took, Style(verbose=True))[1] == ("instance vm-1:4242:ab12cd, term 7",)


def test_an_engine_error_reaches_chat_without_its_raw_text(caplog: pytest.LogCaptureFixture) -> None:
    exc = OperationalError("INSERT INTO positions (secret_col) VALUES (?)", {},
                           Exception("/var/lib/tradectl/db.sqlite"))
    with caplog.at_level("ERROR", "tradectl.events"):
        event = EngineError.from_exception("feed", exc)
    title, lines, _ = stored(event)
    shown = "\n".join((title, *lines, event.summary()))
    assert title == "Error in the market data feed"
    assert lines == ("database error (OperationalError)", f"reference {event.ref} (details in the log)")
    assert "INSERT" not in shown and "/var/lib" not in shown
    assert event.ref in caplog.text and "INSERT INTO positions" in caplog.text  # the details are in the log


def test_reports_and_digests_show_local_times_and_severity_per_line() -> None:
    report = DailyReport(ts=AT, period="day", label="Tue 2024-04-30", start=AT, end=AT, timezone="Europe/Berlin",
                         quote="USD", realized=D("163.91069585"), unrealized=D("-4.5"), fees=D("16.075857"), trades=0,
                         wins=0, losses=0, win_rate=None, best_pair=None, best_pnl=None, worst_pair=None,
                         worst_pnl=None,
                         max_drawdown=D("0"), max_drawdown_pct=D("0"), equity_start=None, equity_end=None)
    title, _, fields = stored(report)
    assert title == "Daily PnL report: Tue 2024-04-30"
    assert ("realized", "+163.91 USD") in fields and ("trades", "none closed") in fields
    paused = format_event("auto_paused", "warning", AutoPaused(reason="feed down", ts=AT).to_dict(), BERLIN, now=AT)
    assert paused.one_line() == "15:45 ⚠️ ⏸ Entries paused automatically: feed down" and paused.zone == "CEST"
    digest = AlertMessage("digest", "warning", (paused.one_line(),), False, digest=True, alerts=(paused,))
    assert telegram_html_text(digest, 4096).startswith("<b>⚠️ 1 alerts, CEST</b>\n15:45 ⚠️")


def test_every_kind_has_a_formatter_and_a_row_from_another_version_still_goes_out() -> None:
    alert = from_payload({"kind": "position_closed", "severity": "info", "text": "closed BTC/USD [#1]",
                          "data": {"pair": "BTC/USD"}}, BERLIN)
    assert alert.title == "closed BTC/USD [#1]"  # its fields unreadable here: the stored summary goes out
    earlier_kill = from_payload({"kind": "killed", "severity": "critical", "text": "KILLED by telegram:1 (complete): x",
                                 "data": {"by": "telegram:1", "complete": True,
                                          "report": ["closed 0.5 BTC/USD @ 41000"]}},
                                BERLIN)
    assert earlier_kill.lines == ("closed 0.5 BTC/USD @ 41000",)  # not "nothing was open"
    unknown = from_payload({"kind": "something_new", "severity": "warning", "text": "a new kind\nsecond line"}, BERLIN)
    assert (unknown.title, unknown.lines) == ("a new kind", ("second line",))


def test_alerts_render_natively_on_each_platform() -> None:
    alert = from_event(PositionClosed(pair="BTC/USD", qty=D("0.25"), entry_price=D("64000"), exit_price=D("64655.6"),
                                      fees=D("16.08"), pnl=D("-163.91"), pnl_pct=D("-1.02"),
                                      reason="closed by telegram:1",
                                      ts=AT), BERLIN, now=AT)
    message = AlertMessage(alert.kind, "error", alert.text_lines(), False, alerts=(alert,))
    html = telegram_html_text(message, 4096)
    assert html.startswith("<b>Closed BTC/USD: -163.91 USD (-1.02%)</b>\nclosed by alice (telegram:1)\n")
    assert "<i>fees</i>: 16.08 USD" in html
    embed = discord_embed(message)
    assert embed["title"] == "Closed BTC/USD: -163.91 USD (-1.02%)" and embed["timestamp"] == AT.isoformat()
    assert embed["fields"] == [{"name": "fees", "value": "16\\.08 USD", "inline": True}]  # escaped: no list item
    colours = {sev: discord_embed(AlertMessage("x", sev, ("t",), False, alerts=(
        format_event("x", sev, {}, BERLIN, fallback="t"),)))["color"]
        for sev in ("info", "warning", "error", "critical")}
    assert len(set(colours.values())) == 4  # a colour per severity
    blocks = slack_blocks(message)
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text",
                                                    "text": "Closed BTC/USD: -163.91 USD (-1.02%)",
                                                    "emoji": True}}
    assert blocks[-1]["elements"][0]["text"] == "info · 15:45 CEST"


async def test_the_dispatcher_writes_alerts_in_the_service_time_zone_with_display_names(db) -> None:  # type: ignore[no-untyped-def]
    from bot.identity import Actor, DisplayNames
    from tests.fakes.clock import ManualClock

    await DisplayNames(db, ManualClock()).remember(Actor("telegram", "1", "alice"))
    settings = NotifySettings(destinations=(Destination(name="ops", platform="discord", target="1"),))
    (row,) = OutboxWriter(settings).rows_for(StateChanged(state="paused", previous="running", by="telegram:1",
                                                          reason="lunch", ts=AT))
    dispatcher = OutboxDispatcher(db, settings, {}, instance_id="t", timezone="Europe/Berlin")
    _, message = dispatcher._compose([row], 2000, await dispatcher._style())
    assert message.lines == ("⏸ Entries paused by alice (telegram:1)", "reason: lunch")
    assert message.alerts[0].when.endswith("CEST")
