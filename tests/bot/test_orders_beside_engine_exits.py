"""/sell and /cancel beside the engine's own exit orders, from chat: a /sell while the stop's exit is
partially filled is refused (the stop is already selling all of it), and /cancel leaves the engine's
protective exits alone -- one by id is refused, /cancel all cancels the rest and says what it left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlmodel import col, select

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from core.settings.settings_models import ChatSettings
from core.trading.intents import short_order_id
from exchanges.base import OrderStatus
from persistence.db import Database
from persistence.models import OrderRow, PositionRow
from tests.bot.conftest import ADMIN, BASE_SETTINGS, TRADER
from tests.bot.test_manual_orders import ManualRig, _confirmed
from tests.core.engine_rig import make_candle
from tests.core.waiting import eventually


@pytest.fixture
async def rig(db: Database) -> AsyncIterator[ManualRig]:
    r = ManualRig(db, pairs=("BTC/USD", "ETH/USD"))
    await r.start()
    for _ in range(3):
        await r.candle("60000")
        await r.candle("3000", pair="ETH/USD")
    yield r
    await r.stop()


@pytest.fixture
def chat(rig: ManualRig, db: Database) -> ChatHarness:
    return ChatHarness(build_dispatcher(db, rig.engine, ChatSettings(**BASE_SETTINGS), clock=rig.clock), actor=TRADER)


async def _orders(db: Database) -> list[OrderRow]:
    async with db.read() as s:
        return list((await s.exec(select(OrderRow).order_by(col(OrderRow.id)))).all())


async def _stop_partly_filled(rig: ManualRig, chat: ChatHarness, db: Database) -> OrderRow:
    """A position of 0.01 BTC whose stop triggered on a thin candle: its exit sold 0.004 and works on."""
    await _confirmed(chat, "/buy BTC/USD 0.01")
    await rig.candle("58000", low="58000", volume="0.004")  # below the stop at 58,200; 0.004 BTC of liquidity
    await rig.engine.executor.poll_fills()
    stop = (await _orders(db))[-1]
    assert (stop.purpose, stop.status, stop.filled_qty) == ("stop", OrderStatus.PARTIALLY_FILLED, Decimal("0.004"))
    return stop


async def test_a_sell_while_the_stop_exit_is_partly_filled_is_refused(rig: ManualRig, chat: ChatHarness,
                                                                      db: Database) -> None:
    await _stop_partly_filled(rig, chat, db)
    for line in ("/sell BTC/USD 0.006", "/sell BTC/USD 0.001"):
        refused = await chat.send(line)
        assert refused.has_style("error") and "already closing the BTC/USD position" in refused.text, refused.text
    await rig.candle("58000", volume="1000")  # the stop's exit sells the rest; nothing more is sold

    async def closed() -> bool:
        await rig.engine.executor.poll_fills()
        async with db.read() as s:
            (pos,) = (await s.exec(select(PositionRow))).all()
        return pos.status == "closed"

    await eventually(closed, what="the stop's exit filled")
    sells = [o for o in await _orders(db) if o.side == "sell"]
    assert [(o.purpose, o.filled_qty) for o in sells] == [("stop", Decimal("0.01"))]


async def test_cancel_leaves_the_engines_protective_exit_alone(rig: ManualRig, chat: ChatHarness, db: Database) -> None:
    stop = await _stop_partly_filled(rig, chat, db)
    short = short_order_id(stop.client_order_id)
    refused = await chat.send(f"/cancel {short}")
    assert refused.has_style("error") and "engine's stop exit" in refused.text and "cannot be cancelled" in refused.text
    nothing = await chat.send("/cancel all", as_=ADMIN)
    assert nothing.has_style("error") and "nothing to cancel" in nothing.text and short in nothing.text
    await _confirmed(chat, "/buy ETH/USD 0.1 @ 2950")  # a resting limit buy of one's own: that one goes
    asked, done = await _confirmed(chat, "/cancel all", as_=ADMIN)
    assert "Cancels 1 order" in asked.text and f"Left working: the engine's stop exit {short}" in asked.text
    assert "Cancelled 1 order" in done.text and short in done.text
    by_purpose = {o.purpose: o.status for o in await _orders(db)}
    assert by_purpose["stop"] == OrderStatus.PARTIALLY_FILLED and list(by_purpose.values()).count(
        OrderStatus.CANCELLED) == 1


async def test_a_cancel_the_venue_answers_with_a_fill_says_filled_not_cancelled(rig: ManualRig, chat: ChatHarness,
                                                                                  db: Database) -> None:
    await _confirmed(chat, "/buy BTC/USD 0.01 @ 59000")
    (order,) = await _orders(db)
    short = short_order_id(order.client_order_id)
    asked = await chat.send(f"/cancel {short}")
    n = rig.bars["BTC/USD"]
    rig.bars["BTC/USD"] = n + 1
    await rig.paper.on_market_event(make_candle(n, "59500", low="58900"))  # the venue fills it; not read yet
    done = await chat.press(asked.confirm_payload)
    assert "Cancelled" not in done.text and f"already filled: {short}" in done.text, done.text
    (order,) = await _orders(db)
    assert order.status == OrderStatus.FILLED
