"""The trading core: the engine and everything it needs to decide, size, execute, account and stop.

What the chat layer (``bot``) and operations (``core.ops``) may use is listed here: the service views
commands read, the intents they submit, the events alerts are made from, and the confirmation journal.
The engine itself is assembled by :func:`core.trading.assembly.build_engine` in the composition root.
"""

from core.trading.confirmed import mark_executed
from core.trading.events import DestinationFailing, Event, EventBus, ExitKind
from core.trading.intents import (
    AddPair,
    CancelOrders,
    CloseAll,
    ClosedPosition,
    ClosePosition,
    EntriesStop,
    IntentResult,
    Kill,
    ListOrders,
    ListPairs,
    OpenItem,
    OpenKind,
    OrderQuote,
    OrderView,
    PairView,
    PauseEntries,
    PlaceOrder,
    Rearm,
    RemovePair,
    Resume,
)
from core.trading.state import TradingStatus
from core.trading.values import OrderPurpose, PositionStatus, known_purpose
from core.trading.views import PositionView, ReportService, ServiceUnavailable, TradingService
from exchanges.base import OrderStatus, Side

__all__ = [
    "AddPair", "CancelOrders", "CloseAll", "ClosePosition", "ClosedPosition", "DestinationFailing", "EntriesStop",
    "Event", "EventBus", "ExitKind", "IntentResult", "Kill", "ListOrders", "ListPairs", "OpenItem", "OpenKind",
    "OrderPurpose", "OrderQuote", "OrderStatus", "OrderView", "PairView", "PauseEntries", "PlaceOrder",
    "PositionStatus", "PositionView", "Rearm", "RemovePair", "ReportService", "Resume", "ServiceUnavailable",
    "Side", "TradingService", "TradingStatus", "known_purpose", "mark_executed"
]
