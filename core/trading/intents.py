"""Intents: what a command asks the engine to do. The engine applies them on its own loop.

Commands never flip flags themselves: they ``await engine.submit(PauseEntries(requested_by=...))``
and report the :class:`IntentResult`. ``requested_by`` is the actor's stable id
(``"telegram:123456"``), never a display name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from core.trading.values import OrderPurpose, PositionStatus
from exchanges.base import OrderStatus, OrderType, Side
from persistence.models import OrderRow


@dataclass(frozen=True, slots=True)
class Intent:
    requested_by: str


@dataclass(frozen=True, slots=True)
class PauseEntries(Intent):
    reason: str = "paused from chat"


@dataclass(frozen=True, slots=True)
class Resume(Intent):
    pass


@dataclass(frozen=True, slots=True)
class ClosePosition(Intent):
    pair: str = ""


@dataclass(frozen=True, slots=True)
class CloseAll(Intent):
    pass


@dataclass(frozen=True, slots=True)
class Kill(Intent):
    reason: str = "kill requested"


@dataclass(frozen=True, slots=True)
class Rearm(Intent):
    pass


@dataclass(frozen=True, slots=True)
class PlaceOrder(Intent):
    """/buy or /sell by hand: ``qty`` in base units, or ``quote_amount`` in the quote currency (the
    engine turns it into a quantity at the limit or the current price, rounded down to the venue's
    step). ``force`` (admin) skips the risk limits, never the kill or the venue's own rules.
    ``preview`` only checks and prices it (what the confirmation shows); nothing is written or sent."""

    pair: str = ""
    side: Side = Side.BUY
    qty: Decimal | None = None
    quote_amount: Decimal | None = None
    limit_price: Decimal | None = None
    force: bool = False
    preview: bool = False


@dataclass(frozen=True, slots=True)
class CancelOrders(Intent):
    """/cancel: one open order by its id (the full client order id or the short form /orders shows),
    or every open order (``everything``). ``pairs``: only orders in these pairs (a trader's pair
    limit; None: any). ``preview`` only finds them."""

    order_id: str = ""
    everything: bool = False
    pairs: tuple[str, ...] | None = None
    preview: bool = False


@dataclass(frozen=True, slots=True)
class ListOrders(Intent):
    """/orders: the open orders. An intent rather than a query so that every trading service (the
    leader-bound one on a standby included) answers it through ``submit`` without a new method."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderView:
    """One order as the chat shows it. ``short_id`` is what /orders lists and /cancel accepts.

    Made from an order row by :meth:`from_row`, where the row's stored strings become enums."""

    client_order_id: str
    pair: str
    side: Side
    order_type: OrderType
    qty: Decimal
    filled_qty: Decimal
    limit_price: Decimal | None
    avg_price: Decimal | None
    fee: Decimal
    status: OrderStatus
    purpose: OrderPurpose
    requested_by: str
    created_at: datetime
    qty_step: Decimal | None = None
    price_tick: Decimal | None = None

    @classmethod
    def from_row(cls, row: OrderRow, *, qty_step: Decimal | None, price_tick: Decimal | None) -> OrderView:
        """``row`` as the chat shows it, with its market's rules. A side, type, status or purpose none of
        the enums knows (a row written by another version, or edited by hand) is refused with a
        ``ValueError`` naming it, never shown as if it meant something."""
        return cls(client_order_id=row.client_order_id, pair=row.pair, side=Side(row.side),
                   order_type=OrderType(row.order_type), qty=row.qty, filled_qty=row.filled_qty,
                   limit_price=row.limit_price, avg_price=row.avg_price, fee=row.fee, status=OrderStatus(row.status),
                   purpose=OrderPurpose(row.purpose), requested_by=row.requested_by, created_at=row.created_at,
                   qty_step=qty_step, price_tick=price_tick)

    @property
    def short_id(self) -> str:
        return short_order_id(self.client_order_id)

    @property
    def quote(self) -> str:
        return self.pair.rpartition("/")[2]


def short_order_id(client_order_id: str) -> str:
    """The last six characters of a client order id: enough to tell a handful of open orders apart."""
    return client_order_id[-6:]


@dataclass(frozen=True, slots=True)
class OrderQuote:
    """What a manual order will do, priced now: the quantity after rounding to the venue's step, the
    price it is expected to fill at (the limit, or the current price), its value, the fee at the
    venue's rate (taker at market, maker for a limit that rests) and the total paid or received."""

    pair: str
    side: Side
    qty: Decimal
    requested: str  # the amount as asked ("0.01", "250 USD")
    price: Decimal  # expected fill price
    market_price: Decimal
    limit_price: Decimal | None
    value: Decimal
    fee: Decimal
    fee_rate: Decimal
    total: Decimal  # buy: value + fee paid; sell: value - fee received
    stop: Decimal | None = None  # a buy's initial stop
    rounded: bool = False  # the quote amount gave a quantity that was rounded down to the step
    maker: bool = False  # a limit that rests (maker fee); otherwise it takes liquidity (taker fee)
    qty_step: Decimal | None = None
    price_tick: Decimal | None = None
    overridden: tuple[str, ...] = ()  # risk limits ``force`` skipped, in words
    position_qty: Decimal | None = None  # a sell: what the position holds before it

    @property
    def quote(self) -> str:
        return self.pair.rpartition("/")[2]

    @property
    def base(self) -> str:
        return self.pair.partition("/")[0]


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A position a command (or the kill switch) closed: what it sold, for how much, with what result.

    Typed, so the chat shows it in its own number format with totals; amounts are in the pair's quote."""

    pair: str
    qty: Decimal
    exit_price: Decimal | None
    pnl: Decimal
    fees: Decimal
    pnl_pct: Decimal | None = None
    qty_step: Decimal | None = None  # the pair's market rules, to show its figures as the venue counts them
    price_tick: Decimal | None = None

    @property
    def quote(self) -> str:
        return self.pair.rpartition("/")[2]

    @property
    def value(self) -> Decimal:
        """What the sale brought in (quantity times exit price), in the quote currency."""
        return self.qty * self.exit_price if self.exit_price is not None else Decimal(0)


class OpenKind(StrEnum):
    """What an :class:`OpenItem` is."""

    POSITION = "position"
    ORDER = "order"


@dataclass(frozen=True, slots=True)
class OpenItem:
    """Something still open after the command: a position whose exit has not filled, or an order (with
    its ``side`` and ``purpose``; ``purpose`` None when the order's row names a purpose this version does
    not know)."""

    pair: str
    qty: Decimal
    what: OpenKind = OpenKind.POSITION
    side: Side | None = None
    purpose: OrderPurpose | None = None
    qty_step: Decimal | None = None  # the pair's quantity step, to show ``qty`` as the venue counts it


@dataclass(frozen=True, slots=True)
class IntentResult:
    """``ok`` False means refused (``message`` says why and what to do instead).

    ``closed``, ``cancelled`` and ``pending`` are what a close or a kill did, as typed values
    (``details`` is free text for anything else); a result with none of them did nothing of that kind."""

    ok: bool
    message: str
    details: tuple[str, ...] = field(default=())
    closed: tuple[ClosedPosition, ...] = ()
    cancelled: tuple[OpenItem, ...] = ()  # orders cancelled
    pending: tuple[OpenItem, ...] = ()  # exits sent but not filled yet, or (after a kill's timeout) still open
    acknowledged_s: float | None = None  # a kill: intent -> every cancel and close acknowledged by the venue
    flat_s: float | None = None  # a kill: intent -> the venue confirmed nothing is open
    quote: OrderQuote | None = None  # /buy, /sell: the order priced (a preview, or what was sent)
    orders: tuple[OrderView, ...] = ()  # /orders: open orders; /buy, /sell: the order sent; /cancel: those cancelled
    pairs: tuple[PairView, ...] = ()  # /pairs: the traded pairs and their state


# -- the traded pairs (/pairs) ---------------------------------------------------------------------

PairChoice = Literal["close", "keep"]


@dataclass(frozen=True, slots=True)
class AddPair(Intent):
    """Trade ``pair`` from now on: checked against the venue's markets (and the feed's data), its history
    back-filled before its first scan, the pairs overlay rewritten. ``preview`` only checks."""

    pair: str = ""
    preview: bool = False


@dataclass(frozen=True, slots=True)
class RemovePair(Intent):
    """Stop trading ``pair``. With an open position the caller must choose: ``close`` flattens it at
    market first, ``keep`` stops new entries and manages its exits until it is closed, then drops the
    pair. Without a choice such a removal is refused with both options. ``preview`` only checks."""

    pair: str = ""
    then: PairChoice | None = None
    preview: bool = False


@dataclass(frozen=True, slots=True)
class ListPairs(Intent):
    """/pairs: the traded pairs and their state (an intent, like ``ListOrders``, so every trading
    service answers it through ``submit``)."""


class EntriesStop(StrEnum):
    """Why a traded pair takes no new entry (/pairs)."""

    PAUSED = "paused"  # the trading state
    KILLED = "killed"  # the trading state
    CLOSING = "closing"  # removed with ``keep``: waiting for its position to close
    AFTER_RESTART = "after restart"  # added on a feed that cannot subscribe while running


@dataclass(frozen=True, slots=True)
class PairView:
    """One traded pair as /pairs shows it. ``position``: its pending (entry order working) or open
    position's status, None without one; ``entries_stopped_by``: why no new entry may open (None: they
    may); ``candle_age_s``: seconds since its last candle closed (None: none yet)."""

    pair: str
    venue_symbol: str
    position: PositionStatus | None
    entries_stopped_by: EntriesStop | None
    candle_age_s: float | None
