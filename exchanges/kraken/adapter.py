"""Kraken spot as an :class:`exchanges.base.LiveExchange`.

Order submission is the one call never simply retried: a submit whose answer was lost may have
been accepted. ``place_order`` therefore looks the order up by its client id (Kraken
``cl_ord_id``, searched in open then closed orders) before the first submit and again after any
ambiguous failure, and only resubmits when Kraken has no such order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from exchanges._http import epoch_seconds, stripped, utc_from_epoch
from exchanges._stream import StreamFeed, run_feed
from exchanges._validate import check_order
from exchanges.base import (
    Balance,
    Candle,
    Capabilities,
    Fill,
    FillsPage,
    Market,
    Order,
    OrderBook,
    OrderRequest,
    OrderType,
    PreflightCheck,
    PrivateEvent,
    Ticker,
)
from exchanges.clock import Clock, SystemClock
from exchanges.errors import (
    ExchangeError,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    TemporaryError,
)
from exchanges.kraken import parse
from exchanges.kraken.auth import Nonces, NonceSource, venue_client_id
from exchanges.kraken.preflight import venue_time, withdraw_check
from exchanges.kraken.ratelimit import TIERS, DecayCounter, Tier
from exchanges.kraken.rest import KrakenRest
from exchanges.kraken.symbols import KrakenPair, KrakenSymbols
from exchanges.kraken.ws import BookSession, ExecutionsSession, MarketSession
from exchanges.preflight import run_preflight
from exchanges.retry import DEFAULT_RETRY, WS_RECONNECT, Backoff, RetryPolicy, Sleep, submit_with_lookup

log = logging.getLogger(__name__)

DEFAULT_REST_URL = "https://api.kraken.com"
DEFAULT_WS_URL = "wss://ws.kraken.com/v2"
DEFAULT_WS_AUTH_URL = "wss://ws-auth.kraken.com/v2"
INTERVALS_MIN = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
PAGE = 50


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


class KrakenExchange:
    name = "kraken"
    capabilities = Capabilities(websocket_market_data=True, private_stream=True,
                                timeframes_s=tuple(m * 60 for m in INTERVALS_MIN))

    def __init__(
        self,
        api_key: SecretStr | str | None = None,
        api_secret: SecretStr | str | None = None,
        *,
        rest_url: str = DEFAULT_REST_URL,
        ws_url: str = DEFAULT_WS_URL,
        ws_auth_url: str = DEFAULT_WS_AUTH_URL,
        tier: str | Tier = "starter",
        clock: Clock | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        submit_attempts: int = 3,
        ws_backoff: Backoff = WS_RECONNECT,
        ws_idle_timeout_s: float = 10.0,
        close_grace_s: float = 2.0,
        request_timeout_s: float = 10.0,
        nonces: Nonces | None = None,  # None: in memory only (tests, tools); the service stores them (core/app/live.py)
        max_clock_skew_s: float = 5.0,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.rest = KrakenRest(base_url=rest_url, api_key=stripped(api_key), api_secret=stripped(api_secret),
                               nonces=nonces or NonceSource(),
                               counter=DecayCounter(TIERS[tier] if isinstance(tier, str) else tier, sleep=sleep),
                               retry=retry, timeout_s=request_timeout_s, sleep=sleep, transport=transport)
        self.ws_url, self.ws_auth_url = ws_url, ws_auth_url
        self.retry, self.submit_attempts = retry, max(1, submit_attempts)
        self.ws_backoff, self.ws_idle_timeout_s, self.close_grace_s = ws_backoff, ws_idle_timeout_s, close_grace_s
        self.max_clock_skew_s = max_clock_skew_s
        self._sleep = sleep
        self._symbols: KrakenSymbols | None = None
        self._started = False
        self._cid_by_txid: dict[str, str] = {}   # Kraken txid -> our client order id
        self._ours_by_venue: dict[str, str] = {}  # cl_ord_id as sent -> our client order id
        self._unfiltered_lookup = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        await self.rest.open()
        await self.symbols()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self.rest.close()

    async def symbols(self) -> KrakenSymbols:
        if self._symbols is None:
            self._symbols = KrakenSymbols.from_asset_pairs(await self.rest.public("AssetPairs"))
        return self._symbols

    # -- reference data ---------------------------------------------------------------------------

    async def markets(self) -> dict[str, Market]:
        return (await self.symbols()).markets()

    async def balances(self) -> dict[str, Balance]:
        return parse.parse_balances(await self.rest.private("BalanceEx", retry=True), await self.symbols())

    # -- orders -------------------------------------------------------------------------------------

    def _ours(self, venue_cid: str) -> str:
        return self._ours_by_venue.get(venue_cid, venue_cid)

    def _client_id(self, txid: str) -> str | None:
        return self._cid_by_txid.get(txid)

    async def _orders(self, result: Any) -> list[Order]:
        orders = parse.parse_orders(result, await self.symbols(), self._client_id)
        out = []
        for order in orders:
            if order.client_order_id:
                order = dataclasses.replace(order, client_order_id=self._ours(order.client_order_id))
                self._cid_by_txid[order.venue_order_id] = order.client_order_id
            out.append(order)
        return out

    async def _find(self, venue_cid: str) -> Order | None:
        """The order with this ``cl_ord_id``: open ones first, then recently closed ones.

        Kraken filters by ``cl_ord_id`` itself; should it ever refuse the filter, the search falls
        back (for good) to the unfiltered lists (all open orders, the 50 latest closed ones).
        """
        for method, key in (("OpenOrders", "open"), ("ClosedOrders", "closed")):
            data = {} if self._unfiltered_lookup else {"cl_ord_id": venue_cid}
            try:
                result = await self.rest.private(method, data, retry=True)
            except InvalidOrder:
                if self._unfiltered_lookup:
                    raise
                log.warning("Kraken refused %s filtered by cl_ord_id; searching unfiltered lists", method)
                self._unfiltered_lookup = True
                result = await self.rest.private(method, {}, retry=True)
            if not isinstance(result, dict) or not isinstance(result.get(key), dict):
                raise MalformedResponse(f"Kraken {method}: no '{key}' object")
            for order in await self._orders(result[key]):
                if order.client_order_id == self._ours(venue_cid):
                    return order
        return None

    async def _query(self, txid: str) -> Order | None:
        result = await self.rest.private("QueryOrders", {"txid": txid, "trades": "true"}, retry=True)
        orders = await self._orders(result)
        return orders[0] if orders else None

    def add_order_data(self, request: OrderRequest, rest_id: str, venue_cid: str) -> dict[str, str]:
        """The AddOrder form fields (besides the nonce), in the order Kraken documents them."""
        data = {"pair": rest_id, "type": request.side.value, "ordertype": request.type.value,
                "volume": _fmt(request.qty)}
        if request.type is OrderType.LIMIT:
            assert request.limit_price is not None
            data["price"] = _fmt(request.limit_price)
        data["cl_ord_id"] = venue_cid
        return data

    async def place_order(self, request: OrderRequest) -> Order:
        pair = (await self.symbols()).by_pair(request.pair)
        check_order(request, pair.market, "Kraken")
        venue_cid = venue_client_id(request.client_order_id)
        self._ours_by_venue[venue_cid] = request.client_order_id
        existing = await self._find(venue_cid)
        if existing is not None:
            log.info("order %s already at Kraken as %s; not resubmitting", request.client_order_id,
                     existing.venue_order_id)
            return existing
        data = self.add_order_data(request, pair.rest_id, venue_cid)
        txid = await self._submit(data, venue_cid, request.client_order_id)
        if isinstance(txid, Order):
            return txid
        self._cid_by_txid[txid] = request.client_order_id
        try:
            order = await self._query(txid)
        except TemporaryError:
            order = None
        return order or Order(client_order_id=request.client_order_id, venue_order_id=txid, pair=request.pair,
                              side=request.side, type=request.type, qty=request.qty,
                              status=parse.order_status("pending", Decimal(0)),
                              limit_price=request.limit_price, created_at=self.clock.now())

    async def _submit(self, data: dict[str, str], venue_cid: str, cid: str) -> str | Order:
        async def add_order() -> str:
            result = await self.rest.private("AddOrder", data, retry=False)
            try:
                return str(result["txid"][0])
            except (KeyError, IndexError, TypeError) as exc:
                raise MalformedResponse("Kraken AddOrder: no txid in the reply") from exc

        policy = RetryPolicy(self.submit_attempts, self.retry.backoff)
        return await submit_with_lookup(add_order, lambda: self._find(venue_cid), policy,
                                        what=f"AddOrder for {cid}", sleep=self._sleep)

    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None:
        venue_cid = venue_client_id(client_order_id)
        self._ours_by_venue[venue_cid] = client_order_id
        txid = next((t for t, c in self._cid_by_txid.items() if c == client_order_id), None)
        if txid is not None:
            order = await self._query(txid)
            if order is not None:
                return order
        return await self._find(venue_cid)

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        order = await self.fetch_order(pair, client_order_id)
        if order is None:
            raise OrderNotFound(f"kraken has no order {client_order_id}")
        if order.status.is_final:
            return order
        try:
            await self.rest.private("CancelOrder", {"txid": order.venue_order_id}, retry=True)
        except OrderNotFound:
            pass  # closed meanwhile (or an earlier attempt succeeded): report what it became
        return await self._query(order.venue_order_id) or order

    async def open_orders(self, pair: str | None = None) -> list[Order]:
        result = await self.rest.private("OpenOrders", retry=True)
        if not isinstance(result, dict) or not isinstance(result.get("open"), dict):
            raise MalformedResponse("Kraken OpenOrders: no 'open' object")
        orders = await self._orders(result["open"])
        return [o for o in orders if pair is None or o.pair == pair]

    # -- fills ----------------------------------------------------------------------------------------

    async def _trades_page(self, cursor: str | None, ofs: int) -> tuple[dict[str, Any], int]:
        data = {"ofs": str(ofs)} if ofs else {}
        if cursor:
            data = {"start": cursor, **data}
        result = await self.rest.private("TradesHistory", data, retry=True)
        try:
            return dict(result["trades"]), int(result["count"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse("Kraken TradesHistory: no trades/count") from exc

    async def fills_since(self, cursor: str | None) -> FillsPage:
        """Fills after ``cursor`` (a Kraken trade id), oldest first, at most 50 per page."""
        trades, total = await self._trades_page(cursor, 0)
        for _ in range(3):
            if total <= len(trades):
                break
            trades, again = await self._trades_page(cursor, total - PAGE)
            if again == total:  # nothing arrived between the two calls, the window is right
                break
            total = again
        await self._learn_client_ids(t.get("ordertxid") for t in trades.values() if isinstance(t, dict))
        fills = parse.parse_trades(trades, await self.symbols(), self._client_id)
        return FillsPage(fills=fills, cursor=fills[-1].fill_id if fills else cursor)

    async def _learn_client_ids(self, txids: Any) -> None:
        unknown = sorted({str(t) for t in txids if t and t not in self._cid_by_txid})
        for i in range(0, len(unknown), PAGE):
            await self._orders(await self.rest.private("QueryOrders", {"txid": ",".join(unknown[i:i + PAGE])},
                                                       retry=True))

    async def fills_after(self, cursor: str | None) -> list[Fill]:
        """Every fill after ``cursor``, following pages to the end."""
        out: list[Fill] = []
        while True:
            page = await self.fills_since(cursor)
            out.extend(page.fills)
            if not page.fills or page.cursor == cursor:
                return out
            cursor = page.cursor

    # -- market data ----------------------------------------------------------------------------------

    async def ticker(self, pair: str) -> Ticker:
        p = (await self.symbols()).by_pair(pair)
        return parse.parse_ticker(await self.rest.public("Ticker", {"pair": p.rest_id}), pair, self.clock.now())

    async def order_book(self, pair: str, depth: int = 10) -> OrderBook:
        p = (await self.symbols()).by_pair(pair)
        result = await self.rest.public("Depth", {"pair": p.rest_id, "count": depth})
        return parse.parse_depth(result, pair, self.clock.now())

    def ohlc_params(self, rest_id: str, timeframe_s: int, since: datetime | None) -> dict[str, Any]:
        if timeframe_s % 60 or timeframe_s // 60 not in INTERVALS_MIN:
            raise ExchangeError(f"kraken has no {timeframe_s}s candles")
        params: dict[str, Any] = {"pair": rest_id, "interval": timeframe_s // 60}
        if since is not None:
            params["since"] = epoch_seconds(since)
        return params

    async def candles(self, pair: str, timeframe_s: int, since: datetime | None = None,
                      limit: int = 500) -> list[Candle]:
        """Closed candles only: Kraken's last row (and anything after its ``last``) is still running."""
        p = (await self.symbols()).by_pair(pair)
        result = await self.rest.public("OHLC", self.ohlc_params(p.rest_id, timeframe_s, since))
        rows, last = parse.parse_ohlc(result, pair, timeframe_s)
        now, span = self.clock.now(), timedelta(seconds=timeframe_s)
        closed = [c for c in rows if c.ts + span <= now and (last is None or c.ts <= utc_from_epoch(last))]
        if since is not None:
            return [c for c in closed if c.ts >= since][:limit]
        return closed[-limit:]

    async def _gap_candles(self, pair: str, after: datetime, timeframe_s: int) -> list[Candle]:
        return [c for c in await self.candles(pair, timeframe_s, since=after, limit=720) if c.ts > after]

    def market_events(self, pairs: list[str], timeframe_s: int) -> StreamFeed:
        """Closed candles and tickers for ``pairs`` from WebSocket v2, with ``FeedStatus`` on
        disconnect/reconnect and REST gap fill in between (see :mod:`exchanges._stream`). Pairs can be
        added and removed while it runs (:class:`~exchanges.base.PairSubscriptions`)."""

        async def gap(pair: str, after: datetime) -> list[Candle]:
            return await self._gap_candles(pair, after, timeframe_s)

        async def resolve(pair: str) -> KrakenPair:
            return (await self.symbols()).by_pair(pair)

        async def build() -> MarketSession:
            symbols = await self.symbols()
            self.ohlc_params("", timeframe_s, None)  # validates the timeframe before connecting
            return MarketSession(self.ws_url, [symbols.by_pair(p) for p in pairs], timeframe_s, self.clock, gap,
                                 self.close_grace_s, resolve=resolve)

        return StreamFeed(build, clock=self.clock, backoff=self.ws_backoff, idle_timeout_s=self.ws_idle_timeout_s,
                          sleep=self._sleep)

    async def book_events(self, pairs: list[str], depth: int = 10) -> AsyncIterator[OrderBook | Any]:
        """Order books kept from the ``book`` channel, one :class:`OrderBook` per change."""
        symbols = await self.symbols()
        session = BookSession(self.ws_url, [symbols.by_pair(p) for p in pairs], depth, self.clock)
        async for event in run_feed(session, clock=self.clock, backoff=self.ws_backoff,
                                    idle_timeout_s=self.ws_idle_timeout_s, sleep=self._sleep):
            yield event

    async def _ws_token(self) -> str:
        result = await self.rest.private("GetWebSocketsToken", retry=True)
        try:
            return str(result["token"])
        except (KeyError, TypeError) as exc:
            raise MalformedResponse("Kraken GetWebSocketsToken: no token") from exc

    async def private_events(self) -> AsyncIterator[PrivateEvent]:
        """Own fills and order updates from the private ``executions`` stream, plus ``FeedStatus``.

        Fills missed while disconnected are fetched from ``TradesHistory`` on reconnect.
        """
        symbols = await self.symbols()
        by_name = {p.wsname: p for p in symbols.pairs} | {p.ws_symbol: p for p in symbols.pairs}
        session = ExecutionsSession(self.ws_auth_url, by_name, self.clock,
                                    self._ws_token, self.fills_after, self._client_id, symbols.asset)
        async for event in run_feed(session, clock=self.clock, backoff=self.ws_backoff,
                                    idle_timeout_s=self.ws_idle_timeout_s, sleep=self._sleep):
            if isinstance(event, (Order, Fill)) and event.client_order_id:
                event = dataclasses.replace(event, client_order_id=self._ours(event.client_order_id))
            yield event

    # -- preflight ------------------------------------------------------------------------------------

    async def preflight(self, pairs: Sequence[str]) -> list[PreflightCheck]:
        """Keys, withdrawal permission, clock skew, balances and minimum order per pair."""
        return await run_preflight(self, list(pairs), clock=self.clock, max_skew_s=self.max_clock_skew_s,
                                   holdings="asset(s) in the account",
                                   permission=lambda keys_ok: withdraw_check(self.rest, keys_ok=keys_ok),
                                   venue_time=lambda: venue_time(self.rest))
