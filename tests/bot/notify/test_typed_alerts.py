"""Alerts read typed event values: the exit kind of a close, Decimal quantities of reconciliation and
voided orders shown to the market's step; rows stored before these values existed still render."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D

from bot.notify.formats import Style, from_payload
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import Event, ExitKind, PositionClosed, ReconcileDifference
from core.trading.order_reasons import OrderVoided
from exchanges.base import Side

AT = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
STYLE = Style(names={"telegram:1": "alice"})


def stored(event: Event, style: Style = STYLE) -> tuple[str, tuple[str, ...]]:
    """Title and lines of the alert the dispatcher makes from the event's outbox row."""
    settings = NotifySettings(destinations=(Destination(name="ops", platform="telegram", target="1"),), events={})
    (row,) = OutboxWriter(settings).rows_for(event)
    alert = from_payload(json.loads(row.payload), style, now=AT)
    return alert.title, alert.lines


def close(exit_kind: ExitKind, reason: str, **kw: object) -> PositionClosed:
    return PositionClosed(pair="BTC/USD", qty=D("0.25"), entry_price=D("64000"), exit_price=D("62990.5"), fees=D("16"),
                          pnl=D("-268.38"), pnl_pct=D("-1.67"), reason=reason, exit_kind=exit_kind, ts=AT, **kw)  # type: ignore[arg-type]


def test_the_exit_kind_decides_the_words_not_the_reason_text() -> None:
    misleading = close(ExitKind.STOP, "price 64655.6 >= target 64650 (take profit)", level=D("63000"))
    title, lines = stored(misleading)
    assert title == "Closed BTC/USD: -268.38 USD (-1.67%)"
    assert lines[0] == "stop 63,000.00 reached"
    assert "take" not in " ".join(lines)  # the text is detail, shown only when verbose
    assert stored(misleading,
                  Style(verbose=True))[1][0] == "stop 63,000.00 reached: price 64655.6 >= target 64650 (take profit)"
    assert stored(close(ExitKind.TAKE_PROFIT, "kill switch", level=D("70000")))[1][0] == "take-profit 70,000.00 reached"
    assert stored(close(ExitKind.TRAILING, "", level=D("63500")))[1][0] == "trailing stop 63,500.00 reached"
    assert stored(close(ExitKind.KILL, "score -0.4: trend sell", by="telegram:1"))[1][0] == "kill switch"
    assert stored(close(ExitKind.MANUAL, "stop", by="telegram:1"))[1][0] == "closed by alice (telegram:1)"
    assert stored(close(ExitKind.STRATEGY, "closed by telegram:9"))[1][0] == "strategy exit"


# Outbox rows exactly as the version before exit kinds and typed differences wrote them.
OLD_STOP = ('{"kind": "position_closed", "severity": "info", "text": "closed BTC/USD: 0.25 64000 -> 63000, fees 16, '
            'PnL -266 (-1.66%) [stop]", "data": {"ts": "2024-05-01 13:45:00+00:00", "pair": "BTC/USD", "qty": "0.25", '
            '"entry_price": "64000", "exit_price": "63000", "fees": "16", "pnl": "-266", "pnl_pct": "-1.66", '
            '"reason": "stop", "kind": "position_closed", "severity": "info"}}')
OLD_RECONCILE = ('{"kind": "reconcile_difference", "severity": "warning", "text": "reconciliation: BTC balance below '
                 'open positions: ours 0.5 BTC in positions #1, venue 0.3 BTC", '
                 '"data": {"ts": "2024-05-01 13:45:00+00:00", '
                 '"what": "BTC balance below open positions", "ours": "0.5 BTC in positions #1", "venue": "0.3 BTC", '
                 '"kind": "reconcile_difference", "severity": "warning"}}')


def test_rows_stored_before_exit_kinds_still_render() -> None:
    old = from_payload(json.loads(OLD_STOP), STYLE, now=AT)
    # the books recorded the closing order's purpose as the reason: read as the kind it names
    assert old.title == "Closed BTC/USD: -266.00 USD (-1.66%)"
    assert old.lines == ("stop reached", "sold 0.25 @ 63,000.00 (entry 64,000.00)")
    newer = json.loads(OLD_STOP)
    newer["data"]["exit_kind"] = "something_later"  # a kind a later version added: the text decides, as before
    assert from_payload(newer, STYLE, now=AT).lines[0] == "stop reached"
    reconcile = from_payload(json.loads(OLD_RECONCILE), STYLE, now=AT)
    assert reconcile.title == "Differs from the venue: BTC balance below open positions"
    assert reconcile.lines[0] == "ours 0.5 BTC in positions #1, venue 0.3 BTC"


def test_a_reconcile_alert_shows_quantities_to_the_pairs_step() -> None:
    balance = ReconcileDifference(subject="balance", currency="BTC", ours_qty=D("0.50000000"),
                                  venue_qty=D("0.29999999"), positions=(1, 4), qty_step=D("0.0001"), ts=AT)
    title, lines = stored(balance)
    assert title == "Differs from the venue: BTC balance below open positions"
    assert lines[0] == "open positions #1, #4 hold 0.5 BTC, the venue has 0.3 BTC"
    # short by less than a step: the step would make them read the same, so both are shown in full
    hair = ReconcileDifference(subject="balance", currency="BTC", ours_qty=D("0.5"), venue_qty=D("0.49999"),
                               qty_step=D("0.001"), ts=AT)
    assert stored(hair)[1][0] == "open positions hold 0.5 BTC, the venue has 0.49999 BTC"
    order = ReconcileDifference(subject="order", client_order_id="tc-9", side=Side.SELL, qty=D("1250000.00000000"),
                                pair="PEPE/USD", ours="unknown order", venue="open (submitted)", qty_step=D("1"), ts=AT)
    assert stored(order) == ("Differs from the venue: order tc-9 (sell 1,250,000 PEPE/USD)",
                             ("ours unknown order, venue open (submitted)",
                              "nothing was changed; check and correct by hand"))


def test_a_voided_order_carries_its_quantity_as_a_number() -> None:
    voided = OrderVoided(pair="PEPE/USD", side="buy", qty=D("1250000.00000000"), purpose="entry",
                         client_order_id="tc-1",
                         why="trading is paused: no new entries", ts=AT)
    assert stored(voided)[0] == "Order dropped before sending: buy 1,250,000 PEPE/USD (entry)"
