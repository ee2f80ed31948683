"""/close, /closeall and /kill results show each pair's figures as the venue counts them (its step and tick),
the same strings /positions and the alerts use."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot import format as fmt
from bot.commands.trading import closed_blocks, kill_reply
from bot.errors import CommandError
from bot.reply import Table
from core.trading import ClosedPosition, IntentResult, OpenItem

BTC = ClosedPosition(pair="BTC/USD", qty=D("0.01555944"), exit_price=D("63000"), pnl=D("12.5"), fees=D("0.98"),
                     qty_step=D("0.0001"), price_tick=D("0.1"))
PEPE = ClosedPosition(pair="PEPE/USD", qty=D("12500000"), exit_price=D("0.0000081"), pnl=D("-3.2"), fees=D("0.1"),
                      qty_step=D("1"), price_tick=D("0.00000001"))


def test_closed_rows_follow_each_pairs_step_and_tick() -> None:
    table = next(b for b in closed_blocks([BTC, PEPE]) if isinstance(b, Table))
    btc, pepe = table.rows
    assert btc[1:3] == ("0.0156", "63,000.0") == (fmt.qty(BTC.qty, D("0.0001")), fmt.price(BTC.exit_price, D("0.1")))
    assert pepe[1:3] == ("12,500,000", "0.00000810")


def test_what_is_left_open_after_a_kill_is_counted_in_the_pairs_step() -> None:
    left = OpenItem(pair="BTC/USD", qty=D("0.01555944"), qty_step=D("0.0001"))
    result = IntentResult(ok=False, message="kill incomplete", closed=(PEPE,), pending=(left,))
    with pytest.raises(CommandError) as refused:  # an incomplete kill is a failure, naming what is open
        kill_reply(result)
    assert "Still open: BTC/USD 0.0156" in str(refused.value) and "0.01555944" not in str(refused.value)
