"""The trading core's domain values: what an order is for, where a position is in its life, and the
trading state of a deployment group.

They are ``StrEnum`` members, so each equals the string stored in the database and shown in alerts
(``PositionStatus.OPEN == "open"``): rows keep plain strings, comparisons with either work. Views and
events carry the members; a row's string becomes one where the row is read (``OrderPurpose(row.purpose)``,
which refuses a value it does not know with a ``ValueError`` naming it). An order's life cycle and side
are :class:`exchanges.base.OrderStatus` (``NEW`` exists only in our database) and
:class:`exchanges.base.Side`; :class:`core.trading.state.TradingStates` changes the trading state.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

from exchanges.base import Market, OrderStatus


class TradingStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # no new entries; open positions are still managed
    KILLED = "killed"  # everything flattened; stays so across restarts until an admin re-arms


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


def known_purpose(value: str) -> OrderPurpose | None:
    """``value`` (a row's purpose) as an :class:`OrderPurpose`, or None when it names none (a row written
    by another version of the service). For the paths that must go on whatever a row says -- booking a
    fill, voiding an unsent order, reporting what a kill cancelled; everywhere else ``OrderPurpose(value)``
    refuses it."""
    try:
        return OrderPurpose(value)
    except ValueError:
        return None


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
