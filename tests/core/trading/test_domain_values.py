"""What the engine hands to the chat and the alerts carries typed values (a side, an order status or
purpose, a trading state), made from the rows' strings where the rows are read.

The policy for a row holding a value this version does not know (written by another version, or by
hand): the chat's view of it refuses it with a ``ValueError`` naming the value, rather than showing it as
if it meant something; the paths that must go on whatever a row says -- voiding an unsent order, booking a
fill, reporting a kill -- carry None for its purpose instead (the alert says "unknown purpose").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.trading import OpenKind, OrderView, known_purpose
from core.trading.events import ExitKind, OrderFilled, OrderPlaced, ReconcileDifference, StateChanged
from core.trading.executor import PricedPairs
from core.trading.intents import Kill, ListOrders, PauseEntries, PlaceOrder
from core.trading.order_reasons import OrderVoided
from core.trading.reconciliation import find_differences
from core.trading.values import OrderPurpose, TradingStatus
from exchanges.base import OrderStatus, OrderType, Side
from persistence.db import Database
from persistence.models import OrderRow
from tests.core.engine_rig import PAIR, Rig, ScriptedStrategy

BY = "telegram:1"
D = Decimal


async def _started(db: Database, strategy: ScriptedStrategy | None = None) -> Rig:
    rig = Rig(db, strategy)
    await rig.start()
    for close in ("100", "100", "100"):
        await rig.candle(close)
    return rig


async def _write_order(db: Database, **fields: object) -> None:
    now = datetime.now(UTC)
    values: dict[str, object] = {"client_order_id": "tcforeign0000001", "venue": "paper", "pair": PAIR,
                                 "side": "sell", "order_type": "market", "qty": D(1), "status": "new",
                                 "purpose": "rebalance", "created_at": now, "updated_at": now, **fields}
    async with db.session() as s:
        s.add(OrderRow(**values))


async def test_an_entry_and_its_fill_are_alerted_with_typed_sides_and_purposes(db: Database) -> None:
    rig = await _started(db, ScriptedStrategy({3: "buy"}))
    await rig.candle("100")
    seen = rig.drain()
    (placed,) = [e for e in seen if isinstance(e, OrderPlaced)]
    fills = [e for e in seen if isinstance(e, OrderFilled)]
    assert placed.purpose is OrderPurpose.ENTRY and placed.side is Side.BUY
    assert fills and all(f.side is Side.BUY for f in fills)
    await rig.stop()


async def test_a_state_change_is_alerted_with_typed_states(db: Database) -> None:
    rig = await _started(db)
    rig.drain()
    assert (await rig.engine.submit(PauseEntries(requested_by=BY))).ok
    (changed,) = [e for e in rig.drain() if isinstance(e, StateChanged)]
    assert changed.state is TradingStatus.PAUSED and changed.previous is TradingStatus.RUNNING
    await rig.stop()


async def test_orders_listed_and_cancelled_by_a_kill_carry_typed_values(db: Database) -> None:
    rig = await _started(db)
    rested = await rig.engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side=Side.BUY, qty=D(1),
                                                limit_price=D(99)))
    assert rested.ok, rested.message
    (view,) = (await rig.engine.submit(ListOrders(requested_by=BY))).orders
    assert (view.side, view.order_type, view.status, view.purpose) == ("buy", "limit", "submitted", "entry")
    assert (type(view.side), type(view.order_type), type(view.status), type(view.purpose)) == (
        Side, OrderType, OrderStatus, OrderPurpose)
    killed = await rig.engine.submit(Kill(requested_by=BY))
    (item,) = killed.cancelled
    assert (item.what, item.side, item.purpose) == (OpenKind.ORDER, Side.BUY, OrderPurpose.ENTRY)
    assert type(item.what) is OpenKind and type(item.side) is Side and type(item.purpose) is OrderPurpose
    await rig.stop()


def test_an_order_view_is_made_from_a_row_with_enums_and_refuses_a_value_it_does_not_know() -> None:
    known = {"client_order_id": "tc1", "venue": "paper", "pair": PAIR, "side": "buy", "order_type": "limit",
             "qty": D(1), "filled_qty": D(0), "limit_price": D(99), "avg_price": None, "fee": D(0),
             "status": "submitted", "purpose": "entry", "requested_by": BY, "created_at": datetime.now(UTC)}
    view = OrderView.from_row(OrderRow(**known), qty_step=D("0.01"), price_tick=None)
    assert (view.side, view.order_type, view.status, view.purpose) == (
        Side.BUY, OrderType.LIMIT, OrderStatus.SUBMITTED, OrderPurpose.ENTRY)
    assert (type(view.side), type(view.order_type), type(view.status), type(view.purpose)) == (
        Side, OrderType, OrderStatus, OrderPurpose)
    assert (view.qty_step, view.price_tick, view.short_id) == (D("0.01"), None, "tc1")
    for name, value, enum in (("status", "open", "OrderStatus"), ("purpose", "rebalance", "OrderPurpose"),
                              ("side", "short", "Side"), ("order_type", "iceberg", "OrderType")):
        with pytest.raises(ValueError, match=f"'{value}' is not a valid {enum}"):
            OrderView.from_row(OrderRow(**{**known, name: value}), qty_step=None, price_tick=None)


async def test_orders_are_not_listed_with_a_purpose_nobody_knows(db: Database) -> None:
    rig = await _started(db)
    await _write_order(db, status="submitted")
    with pytest.raises(ValueError, match="'rebalance' is not a valid OrderPurpose"):
        await rig.engine.submit(ListOrders(requested_by=BY))
    await rig.stop()


async def test_an_unsent_order_with_an_unknown_purpose_is_still_voided_and_says_so(db: Database) -> None:
    rig = await _started(db)
    rig.drain()
    notes = await rig.engine.executor.resend_unsent(state=TradingStatus.RUNNING, priced=PricedPairs(frozenset({PAIR})))
    assert notes == []  # nothing of ours is waiting
    await _write_order(db)
    (note,) = await rig.engine.executor.resend_unsent(state=TradingStatus.RUNNING,
                                                      priced=PricedPairs(frozenset({PAIR})))
    assert "voided, never sent: unknown purpose 'rebalance'" in note
    (voided,) = [e for e in rig.drain() if isinstance(e, OrderVoided)]
    assert voided.purpose is None and voided.side is Side.SELL
    assert "(unknown purpose, tcforeign0000001)" in voided.summary()
    await rig.stop()


def test_an_exit_kind_comes_from_a_typed_purpose_and_an_unknown_one_is_unknown() -> None:
    assert ExitKind.of_purpose(OrderPurpose.TAKE_PROFIT) is ExitKind.TAKE_PROFIT
    assert ExitKind.of_purpose(OrderPurpose.ENTRY) is ExitKind.UNKNOWN
    assert known_purpose("rebalance") is None and ExitKind.of_purpose(known_purpose("rebalance")) is ExitKind.UNKNOWN
    assert known_purpose("close") is OrderPurpose.CLOSE


async def test_reconciliation_differences_carry_a_typed_side(db: Database) -> None:
    rig = await _started(db)
    await _write_order(db, status="submitted", purpose="close", created_at=datetime.now(UTC) - timedelta(hours=1))
    (diff,) = await find_differences(db, rig.engine.venue, now=datetime.now(UTC))
    assert (diff.subject, diff.side, type(diff.side)) == ("order", Side.SELL, Side)
    assert diff.what == "order tcforeign0000001 (sell 1 BTC/USD)"
    await rig.stop()


def test_a_balance_difference_has_no_side() -> None:
    assert ReconcileDifference(subject="balance", currency="BTC", ours_qty=D(1), venue_qty=D(0)).side is None
