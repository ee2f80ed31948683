"""The trading core's domain values: what an order is for and where a position is in its life.

They are ``StrEnum`` members, so each equals the string stored in the database and shown in alerts
(``PositionStatus.OPEN == "open"``): rows keep plain strings, comparisons with either work. An order's
life cycle is :class:`exchanges.base.OrderStatus` (``NEW`` exists only in our database); the trading
state is :class:`core.trading.state.TradingStatus`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

from exchanges.base import Market, OrderStatus


class PositionStatus(StrEnum):
    """``pending`` (entry written, not filled) -> ``open`` -> ``closed``; ``void`` when the entry never filled."""

    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    VOID = "void"


class OrderPurpose(StrEnum):
    """Why an order exists (:mod:`core.trading.order_reasons` judges whether the reason still holds)."""

    ENTRY = "entry"
    EXIT = "exit"  # the strategy's sell signal
    STOP = "stop"
    TAKE_PROFIT = "take_profit"
    TRAILING = "trailing"
    CLOSE = "close"  # /close, /closeall
    KILL = "kill"


EXIT_PURPOSES = frozenset({OrderPurpose.EXIT, OrderPurpose.STOP, OrderPurpose.TAKE_PROFIT, OrderPurpose.TRAILING,
                           OrderPurpose.CLOSE})
# Order statuses that are not final: the order may still fill (``new`` ones were never confirmed sent).
OPEN_STATES = (OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
# Statuses in which an entry order leaves its pending position without a fill.
VOIDING_STATES = (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED)


def market_rules(markets: Mapping[str, Market], pair: str) -> tuple[Decimal | None, Decimal | None]:
    """``pair``'s quantity step and price tick, so what the engine reports about it (views, events)
    can be shown as the venue counts it; ``(None, None)`` when its market is not loaded."""
    market = markets.get(pair)
    return (market.qty_step, market.price_tick) if market is not None else (None, None)
