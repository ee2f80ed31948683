"""Fill, open, close and kill alerts show a pair's prices to its tick and quantities to its step, the
same strings /positions shows for the same position; alert rows stored before events carried the
market's rules still render, with the formatter's defaults."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.notify.formats import Alert, Style, from_payload
from bot.notify.senders import AlertMessage, discord_embed, slack_blocks, telegram_html_text
from bot.reply import Table
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import ChatSettings, Destination, NotifySettings
from core.trading.events import (
    Event,
    ExitKind,
    Killed,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionOpened,
)
from core.trading.intents import ClosedPosition, ClosePosition, Kill, OpenItem
from core.trading.order_reasons import OrderVoided
from exchanges.paper import MarketRules
from persistence.db import Database
from strategies.base import Candles, Direction, Signal
from tests.bot.conftest import BASE_SETTINGS, VIEWER
from tests.core.engine_rig import Rig, ScriptedStrategy

AT = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
STYLE = Style()


def stored(event: Event) -> Alert:
    """The alert the dispatcher makes from the event's outbox row."""
    settings = NotifySettings(destinations=(Destination(name="ops", platform="telegram", target="1"),), events={})
    (row,) = OutboxWriter(settings).rows_for(event)
    return from_payload(json.loads(row.payload), STYLE, now=AT)


class BuyOn(ScriptedStrategy):
    """Buys on the given bars with a stop 10% under the close (the rig's fixed stop fits BTC only)."""

    def __init__(self, *bars: int) -> None:
        super().__init__()
        self.bars = bars

    def __call__(self, pair: str, window: Candles, higher: Candles | None) -> Signal:
        if len(window) in self.bars:
            return Signal(pair, Direction.BUY, 1.0, "scripted buy", "scripted",
                          stop=D(str(window.close[-1])) * D("0.9"))
        return Signal.hold(pair, "scripted")


@dataclass(frozen=True)
class Market:
    pair: str
    rules: MarketRules
    close: str  # every candle's close: a price the default format would show otherwise
    shown: str  # the close to the market's tick
    volume: str  # enough for the paper venue to fill an entry at once


PEPE = Market("PEPE/USD", MarketRules(min_qty=D(1), qty_step=D(1), price_tick=D("0.00000001")),
              "0.0000123", "0.00001230", "1000000000000")
BTC = Market("BTC/USD", MarketRules(min_qty=D("0.0001"), qty_step=D("0.0001"), price_tick=D("0.1")),
             "64000.1", "64,000.1", "1000")


async def _position_row(chat: ChatHarness, pair: str) -> dict[str, str]:
    """The row /positions shows for ``pair``, by column."""
    sent = await chat.send("/positions")
    assert sent.reply is not None, sent.rendered
    (table,) = [b for b in sent.reply.blocks if isinstance(b, Table)]
    (row,) = [r for r in table.rows if r[0] == pair]
    return dict(zip(table.headers, row, strict=True))


def _last(rig: Rig, kind: type[Event]) -> Any:
    return [e for e in rig.drain() if isinstance(e, kind)][-1]


@pytest.mark.parametrize("market", [PEPE, BTC], ids=["PEPE", "BTC"])
async def test_fill_open_close_and_kill_alerts_read_as_positions_does(db: Database, market: Market) -> None:
    pair = market.pair
    rig = Rig(db, BuyOn(3, 5), pairs=(pair,), rules={pair: market.rules})
    await rig.start()
    chat = ChatHarness(build_dispatcher(db, rig.engine, ChatSettings(**BASE_SETTINGS), clock=rig.clock), actor=VIEWER)
    try:
        for _ in range(3):
            await rig.candle(market.close, pair=pair, volume=market.volume)
        shown = await _position_row(chat, pair)
        qty, entry, mark = shown["qty"], shown["entry"], shown["mark"]
        assert entry == mark == market.shown  # the paper venue filled at the close, on the tick

        filled, opened = stored(_last(rig, OrderFilled)), stored(_last(rig, PositionOpened))
        assert filled.title == f"Filled: buy {qty} {pair} @ {entry}"
        assert opened.title == f"Opened {pair}: bought {qty} @ {entry}"
        assert dict(opened.fields)["stop"] == shown["stop"]

        assert (await rig.engine.submit(ClosePosition(requested_by="telegram:1", pair=pair))).ok
        closed = stored(_last(rig, PositionClosed))
        sold = f"sold {qty} @ {mark} (entry {entry})"  # sold at the mark /positions showed
        assert closed.lines == ("closed by telegram:1", sold)
        # and so on each platform
        message = AlertMessage(closed.kind, closed.severity, closed.text_lines(), False, alerts=(closed,))
        assert f"\n{sold}" in telegram_html_text(message, 4096)
        assert sold in discord_embed(message)["description"]
        assert sold in json.dumps(slack_blocks(message), ensure_ascii=False)

        for _ in range(2):  # a second entry, flattened by a kill
            await rig.candle(market.close, pair=pair, volume=market.volume)
        shown = await _position_row(chat, pair)
        assert (await rig.engine.submit(Kill(requested_by="telegram:1", reason="test"))).ok
        killed = stored(_last(rig, Killed))
        assert killed.lines[0].startswith(f"{pair} {shown['qty']} @ {shown['mark']}: ")
        assert f"\n{pair} {shown['qty']} @ {shown['mark']}: " in telegram_html_text(
            AlertMessage(killed.kind, killed.severity, killed.text_lines(), False, alerts=(killed,)), 4096)
    finally:
        await rig.stop()


def test_alerts_round_to_the_step_and_tick_they_carry() -> None:
    # a fee charged in the base currency leaves the position off the step; /positions shows it on the step
    btc = {"qty_step": D("0.0001"), "price_tick": D("0.1")}
    opened = PositionOpened(pair="BTC/USD", qty=D("0.01555944"), price=D("64000.2"), fee=D("2.6"), stop=D("57600.1"),
                            reason="", ts=AT, **btc)
    assert stored(opened).title == "Opened BTC/USD: bought 0.0156 @ 64,000.2"
    assert dict(stored(opened).fields)["stop"] == "57,600.1"
    closed = PositionClosed(pair="BTC/USD", qty=D("0.01555944"), entry_price=D("64000.20000000"),
                            exit_price=D("63000.4"), fees=D("5"), pnl=D("-20.56"), pnl_pct=D("-2.06"), reason="stop",
                            exit_kind=ExitKind.STOP, level=D("63000.5"), ts=AT, **btc)
    assert stored(closed).lines == ("stop 63,000.5 reached", "sold 0.0156 @ 63,000.4 (entry 64,000.2)")
    pepe = {"qty_step": D(1), "price_tick": D("0.00000001")}
    filled = OrderFilled(pair="PEPE/USD", side="sell", qty=D("1250000.00000000"), price=D("0.0000123"),
                         fee=D("0.02"), fee_currency="USD", partial=False, client_order_id="tc1", ts=AT, **pepe)
    assert stored(filled).title == "Filled: sell 1,250,000 PEPE/USD @ 0.00001230"
    kill = Killed(by="telegram:1", complete=False, ts=AT,
                  closed=(ClosedPosition(pair="PEPE/USD", qty=D("1250000"), exit_price=D("0.0000123"), pnl=D("-0.5"),
                                         fees=D("0.05"), **pepe),),
                  left=(OpenItem(pair="BTC/USD", qty=D("0.01555944"), qty_step=D("0.0001")),))
    off_step = {"pair": "BTC/USD", "side": "sell", "qty": D("0.01555944"), "ts": AT, **btc}
    assert stored(OrderPlaced(client_order_id="tc2", purpose="exit", **off_step)).title == \
        "Order placed: sell 0.0156 BTC/USD (exit)"
    assert stored(OrderRejected(reason="venue busy", **off_step)).title == \
        "Order refused by the venue: sell 0.0156 BTC/USD"
    assert stored(OrderVoided(purpose="exit", client_order_id="tc3", why="position closed", **off_step)).title == \
        "Order dropped before sending: sell 0.0156 BTC/USD (exit)"
    assert stored(kill).lines[:2] == ("PEPE/USD 1,250,000 @ 0.00001230: -0.50 USD",
                                      "NOT flat yet: position 0.0156 BTC/USD (send /kill again to retry)")


# Outbox rows as they were stored before events carried the market's rules: no qty_step, no price_tick.
OLD_ROWS = {
    "order_filled": {"pair": "PEPE/USD", "side": "buy", "qty": "1250000", "price": "0.00001230", "fee": "0.03",
                     "fee_currency": "USD", "partial": False, "client_order_id": "tc1"},
    "position_opened": {"pair": "BTC/USD", "qty": "0.01555944", "price": "64000.2", "fee": "2.6", "stop": "57600.1",
                        "reason": "scripted buy"},
    "position_closed": {"pair": "BTC/USD", "qty": "0.0156", "entry_price": "64000.20000000", "exit_price": "64000.1",
                        "fees": "5.19", "pnl": "-5.19", "pnl_pct": "-0.52", "reason": "close", "exit_kind": "manual",
                        "by": "telegram:1", "level": None},
    "killed": {"by": "telegram:1", "complete": True, "reason": "test",
               "closed": [{"pair": "PEPE/USD", "qty": "1250000", "exit_price": "0.00001230", "pnl": "-0.5",
                           "fees": "0.05", "pnl_pct": "-0.52"}], "cancelled": [], "left": []},
}


def _payload(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "severity": "critical" if kind == "killed" else "info", "text": f"{kind} (summary)",
            "data": {"ts": "2024-05-01 13:45:00+00:00", **data, "kind": kind}}


def test_rows_stored_without_the_markets_rules_render_with_the_defaults_and_new_ones_with_them() -> None:
    def render(kind: str, rules: dict[str, str] | None = None) -> tuple[str, ...]:
        data = {**OLD_ROWS[kind], **(rules or {})}
        if kind == "killed" and rules:
            data["closed"] = [{**p, **rules} for p in data["closed"]]
        return from_payload(_payload(kind, data), STYLE, now=AT).text_lines()

    assert render("order_filled")[0] == "Filled: buy 1,250,000 PEPE/USD @ 0.0000123"
    assert render("position_opened")[0] == "Opened BTC/USD: bought 0.01555944 @ 64,000.20"
    assert "sold 0.0156 @ 64,000.10 (entry 64,000.20)" in render("position_closed")
    assert render("killed")[1] == "PEPE/USD 1,250,000 @ 0.0000123: -0.50 USD"
    # the same rows written now carry the rules (as strings in JSON)
    pepe, btc = {"qty_step": "1", "price_tick": "1E-8"}, {"qty_step": "0.0001", "price_tick": "0.1"}
    assert render("order_filled", pepe)[0] == "Filled: buy 1,250,000 PEPE/USD @ 0.00001230"
    assert render("position_opened", btc)[0] == "Opened BTC/USD: bought 0.0156 @ 64,000.2"
    assert "sold 0.0156 @ 64,000.1 (entry 64,000.2)" in render("position_closed", btc)
    assert render("killed", pepe)[1] == "PEPE/USD 1,250,000 @ 0.00001230: -0.50 USD"
