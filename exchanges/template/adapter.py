"""The template venue's adapter: what a new venue's ``adapter.py`` looks like, minus the wire.

Every method below implements :class:`exchanges.base.Exchange` the way the Kraken and Coinbase adapters
do: check locally what can be checked (:func:`exchanges._validate.check_order`), ask the venue, translate
its answer into our types and its refusals into :mod:`exchanges.errors` ``from`` the original. Where a
real adapter sends a request (through an :class:`exchanges._http.RestClient` subclass, retried with
:mod:`exchanges.retry`, streamed with :func:`exchanges._stream.run_feed`), this one calls the in-memory
:class:`~exchanges.template.market.TemplateMarket`; those lines are marked ``# venue call``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from exchanges._validate import check_order
from exchanges.base import (
    Balance,
    Candle,
    Capabilities,
    FeedStatus,
    FillsPage,
    Market,
    MarketEvent,
    Order,
    OrderBook,
    OrderRequest,
    Ticker,
)
from exchanges.errors import ExchangeError, InsufficientFunds, InvalidOrder, OrderNotFound, UnknownPair
from exchanges.template.market import MarketRefusal, TemplateMarket

__all__ = ["DEFAULT_MARKETS", "TemplateExchange"]

T = TypeVar("T")
FILLS_PAGE = 100

DEFAULT_MARKETS = {
    pair: Market(pair=pair, base=pair.split("/")[0], quote="USD", venue_symbol=pair.replace("/", "-"),
                 min_qty=Decimal("0.0001"), qty_step=Decimal("0.0001"), price_tick=Decimal("0.01"),
                 min_notional=Decimal(1))
    for pair in ("BTC/USD", "ETH/USD")
}

# The venue's refusal codes and what each means in our hierarchy; anything else is a plain ExchangeError.
_REFUSALS: dict[str, Callable[[str], ExchangeError]] = {
    "UNKNOWN_PAIR": UnknownPair,
    "INSUFFICIENT_FUNDS": InsufficientFunds,
    "UNKNOWN_ORDER": OrderNotFound,
    "NO_PRICE": InvalidOrder,
}


def _ask(what: str, call: Callable[[], T]) -> T:
    """One venue call with its refusal translated at the edge (a real adapter: one HTTP request)."""
    try:
        return call()
    except MarketRefusal as exc:
        raise _REFUSALS.get(exc.code, ExchangeError)(f"template {what}: {exc}") from exc


class TemplateExchange:
    """An :class:`~exchanges.base.Exchange` over an in-memory market (hourly candles only)."""

    name = "template"
    capabilities = Capabilities(websocket_market_data=True, timeframes_s=(3600,))

    def __init__(self, market: TemplateMarket | None = None) -> None:
        self.market = market or TemplateMarket(dict(DEFAULT_MARKETS))
        self._started = False

    async def start(self) -> None:
        """Open connections and load reference data; safe to call twice."""
        self._started = True

    async def stop(self) -> None:
        """Close what ``start`` opened; safe to call twice."""
        self._started = False

    async def markets(self) -> dict[str, Market]:
        return dict(self.market.markets)  # venue call

    async def balances(self) -> dict[str, Balance]:
        raw = _ask("balances", self.market.balances)  # venue call
        return {cur: Balance(currency=cur, total=total, available=total - held) for cur, (total, held) in raw.items()}

    async def place_order(self, request: OrderRequest) -> Order:
        """Idempotent on ``client_order_id``: this venue answers a repeated id with the existing order. A
        venue that does not must look the order up before (re)submitting (see the Kraken adapter)."""
        market = (await self.markets()).get(request.pair)
        if market is None:
            raise UnknownPair(f"template does not trade {request.pair}")
        check_order(request, market, "template")
        return _ask("place order", lambda: self.market.place(request))  # venue call

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        return _ask("cancel", lambda: self.market.cancel(client_order_id))  # venue call

    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None:
        return _ask("order", lambda: self.market.order(client_order_id))  # venue call

    async def open_orders(self, pair: str | None = None) -> list[Order]:
        orders = _ask("open orders", self.market.open_orders)  # venue call
        return [o for o in orders if pair is None or o.pair == pair]

    async def fills_since(self, cursor: str | None) -> FillsPage:
        """Our cursor is the venue's own (here a position in its fill history), passed through as text."""
        after = int(cursor) if cursor else 0
        fills = _ask("fills", lambda: self.market.fills(after, FILLS_PAGE))  # venue call
        return FillsPage(fills=fills, cursor=str(after + len(fills)) if fills else cursor)

    async def ticker(self, pair: str) -> Ticker:
        return _ask("ticker", lambda: self.market.ticker(pair))  # venue call

    async def order_book(self, pair: str, depth: int = 10) -> OrderBook:
        bids, asks = _ask("book", lambda: self.market.book(pair, depth))  # venue call
        return OrderBook(pair=pair, bids=tuple(bids), asks=tuple(asks), ts=datetime.now(UTC))

    async def candles(self, pair: str, timeframe_s: int, since: datetime | None = None,
                      limit: int = 500) -> list[Candle]:
        """Closed candles only, oldest first: from ``since`` on (the first ``limit``), else the latest ``limit``."""
        if timeframe_s not in self.capabilities.timeframes_s:
            raise ExchangeError(f"template has no {timeframe_s}s candles")
        rows = _ask("candles", lambda: self.market.candles(pair, timeframe_s))  # venue call
        if since is not None:
            return [c for c in rows if c.ts >= since][:limit]
        return rows[-limit:]

    async def market_events(self, pairs: list[str], timeframe_s: int) -> AsyncIterator[MarketEvent]:
        """Candles and tickers for ``pairs`` as the market reports them, after one ``FeedStatus``. A real
        venue streams through :func:`exchanges._stream.run_feed`, which adds reconnects and gap fill."""
        yield FeedStatus(connected=True, detail="connected", ts=datetime.now(UTC))
        while True:
            event = await self.market.updates.get()  # venue call
            if event.pair in pairs and (isinstance(event, Ticker) or event.timeframe_s == timeframe_s):
                yield event
