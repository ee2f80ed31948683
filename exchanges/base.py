"""The exchange contract: one small typed Protocol that every venue implements.

Paper, Kraken and Coinbase all implement :class:`Exchange` and pass the same contract test suite
(``tests/exchanges/contract.py``). Venue adapters translate their own errors into the hierarchy in
:mod:`exchanges.errors` at the edge; nothing above ``exchanges/`` ever sees an httpx or websockets
exception.

Live venues (real money) also implement :class:`LiveExchange`: the preflight gate and the
account's private stream.

Pairs are always written ``BASE/QUOTE`` (``BTC/USD``) above this layer; each adapter maps them to
its own names. Money and quantities are ``Decimal``; times are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(enum.StrEnum):
    """Order life cycle. ``NEW`` exists only in our database: written before submission."""

    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


@dataclass(frozen=True, slots=True)
class Market:
    """A pair's trading rules on one venue."""

    pair: str
    base: str
    quote: str
    venue_symbol: str
    min_qty: Decimal
    qty_step: Decimal
    price_tick: Decimal
    min_notional: Decimal = Decimal(0)
    maker_fee: Decimal = Decimal("0.0016")
    taker_fee: Decimal = Decimal("0.0026")

    def round_qty(self, qty: Decimal) -> Decimal:
        """Round a quantity *down* to the venue's step."""
        steps = (qty / self.qty_step).to_integral_value(rounding="ROUND_FLOOR")
        return (steps * self.qty_step).normalize() if steps else Decimal(0)

    def round_price(self, price: Decimal) -> Decimal:
        ticks = (price / self.price_tick).to_integral_value(rounding="ROUND_HALF_EVEN")
        return ticks * self.price_tick


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    total: Decimal
    available: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_order_id: str
    pair: str
    side: Side
    type: OrderType
    qty: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """The venue's view of one order."""

    client_order_id: str
    venue_order_id: str
    pair: str
    side: Side
    type: OrderType
    qty: Decimal
    status: OrderStatus
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    limit_price: Decimal | None = None
    created_at: datetime | None = None
    reject_reason: str = ""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fill_id`` is unique per venue; fee is in ``fee_currency``."""

    fill_id: str
    client_order_id: str
    venue_order_id: str
    pair: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    ts: datetime
    liquidity: str = "taker"


@dataclass(frozen=True, slots=True)
class Ticker:
    pair: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class OrderBook:
    pair: str
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    ts: datetime


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed candle; ``ts`` is its open time (UTC)."""

    pair: str
    timeframe_s: int
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A market-data stream's connection changed (connected, disconnected, resynced)."""

    connected: bool
    detail: str
    ts: datetime


MarketEvent = Candle | Ticker | FeedStatus
PrivateEvent = Order | Fill | FeedStatus


@dataclass(frozen=True, slots=True)
class FillsPage:
    fills: list[Fill]
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class PreflightCheck:
    """One line of ``tradectl check --live``: a named check, whether it passed, and why (never a secret)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a venue can do, as typed fields rather than string-keyed dicts."""

    market_orders: bool = True
    limit_orders: bool = True
    client_order_ids: bool = True
    websocket_market_data: bool = False
    private_stream: bool = False
    timeframes_s: tuple[int, ...] = field(default=(60, 300, 900, 3600, 14400, 86400))


@runtime_checkable
class Exchange(Protocol):
    """Every venue: paper, Kraken, Coinbase.

    Methods raise :class:`exchanges.errors.ExchangeError` subclasses only. ``place_order`` is
    idempotent on ``client_order_id``: placing the same id twice returns the existing order
    rather than creating a second one, so an executor that crashed mid-submit can retry safely.
    """

    name: str
    capabilities: Capabilities

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def markets(self) -> dict[str, Market]: ...
    async def balances(self) -> dict[str, Balance]: ...
    async def place_order(self, request: OrderRequest) -> Order: ...
    async def cancel_order(self, pair: str, client_order_id: str) -> Order: ...
    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None: ...
    async def open_orders(self, pair: str | None = None) -> list[Order]: ...
    async def fills_since(self, cursor: str | None) -> FillsPage: ...
    async def ticker(self, pair: str) -> Ticker: ...
    async def order_book(self, pair: str, depth: int = 10) -> OrderBook: ...
    async def candles(
        self, pair: str, timeframe_s: int, since: datetime | None = None, limit: int = 500
    ) -> list[Candle]: ...
    def market_events(self, pairs: list[str], timeframe_s: int) -> AsyncIterator[MarketEvent]: ...


@runtime_checkable
class LiveExchange(Exchange, Protocol):
    """A venue that moves real money (Kraken, Coinbase): :class:`Exchange` plus what only a live
    account has. Paper and replay venues do not implement it; the composition root builds a live
    venue as this type, so the preflight gate needs no cast.
    """

    async def preflight(self, pairs: Sequence[str]) -> list[PreflightCheck]:
        """Keys, withdrawal/transfer permission, clock skew, balances and one minimum order per pair.
        Never raises for a failing check: each failure is a ``PreflightCheck(ok=False)``."""
        ...

    def private_events(self) -> AsyncIterator[PrivateEvent]:
        """The account's own order updates and fills as they happen, with ``FeedStatus`` on reconnects."""
        ...


@runtime_checkable
class PairSubscriptions(Protocol):
    """A market-data feed whose pairs can change while it runs (``/pairs add`` / ``/pairs remove``).

    Optional: the engine checks for it with ``isinstance``; a feed without it keeps the pairs it
    was started with, and a change of pairs waits for a restart. The replay feed implements it, and so
    do the live feeds (:class:`exchanges._stream.StreamFeed` for Kraken and Coinbase, the ccxt streams).
    """

    async def add(self, pair: str) -> Sequence[Candle]:
        """Start streaming ``pair``. Returns the closed candles the feed already holds for it and will
        not stream (its history, oldest first; empty when it has none, so the caller back-fills from
        the venue). Raises a :class:`~exchanges.errors.TradectlError` (nothing changed) when the feed
        has no data for the pair."""
        ...

    async def remove(self, pair: str) -> None:
        """Stop streaming ``pair`` (a pair not streamed is no error)."""
        ...


@runtime_checkable
class OpenMarkets(Protocol):
    """A venue that trades whatever market it is given rules for (the paper venue), so a new pair is
    opened on it rather than looked up in a listing. Optional, like :class:`PairSubscriptions`."""

    async def open_market(self, pair: str) -> Market:
        """Trade ``pair`` from now on (with the venue's rules for it); returns its market. Opening a
        market it already trades returns that market."""
        ...
