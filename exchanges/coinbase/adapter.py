"""Coinbase Advanced Trade spot as an :class:`exchanges.base.LiveExchange`.

Coinbase refuses to create a second order with a ``client_order_id`` it has already seen and
answers with the existing order instead, so resubmitting after a lost reply is safe. The adapter
still looks the order up among recent orders before resubmitting, which also covers the case of
a duplicate reported as a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from exchanges._http import epoch_seconds, utc_from_iso
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
    OrderStatus,
    OrderType,
    PreflightCheck,
    PrivateEvent,
    Ticker,
)
from exchanges.clock import Clock, SystemClock
from exchanges.coinbase import parse
from exchanges.coinbase.auth import CoinbaseSigner
from exchanges.coinbase.preflight import permission_check, venue_time
from exchanges.coinbase.rest import CoinbaseOrderRefused, CoinbaseRest, order_failure
from exchanges.coinbase.symbols import CoinbaseProduct, CoinbaseSymbols
from exchanges.coinbase.ws import MarketSession, UserSession
from exchanges.errors import (
    ExchangeError,
    MalformedResponse,
    OrderNotFound,
    TemporaryError,
    UnknownPair,
)
from exchanges.preflight import guarded, run_preflight
from exchanges.retry import DEFAULT_RETRY, WS_RECONNECT, Backoff, RetryPolicy, Sleep, submit_with_lookup

log = logging.getLogger(__name__)

DEFAULT_REST_URL = "https://api.coinbase.com"
DEFAULT_WS_URL = "wss://advanced-trade-ws.coinbase.com"
DEFAULT_WS_USER_URL = "wss://advanced-trade-ws-user.coinbase.com"
GRANULARITY = {60: "ONE_MINUTE", 300: "FIVE_MINUTE", 900: "FIFTEEN_MINUTE", 1800: "THIRTY_MINUTE",
               3600: "ONE_HOUR", 7200: "TWO_HOUR", 21600: "SIX_HOUR", 86400: "ONE_DAY"}
MAX_CANDLES_PER_CALL = 350
FILLS_PAGE = 100


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


class CoinbaseExchange:
    name = "coinbase"
    capabilities = Capabilities(websocket_market_data=True, private_stream=True, timeframes_s=tuple(GRANULARITY))

    def __init__(
        self,
        api_key: SecretStr | str | None = None,
        api_secret: SecretStr | str | None = None,
        *,
        rest_url: str = DEFAULT_REST_URL,
        ws_url: str = DEFAULT_WS_URL,
        ws_user_url: str = DEFAULT_WS_USER_URL,
        clock: Clock | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        submit_attempts: int = 3,
        ws_backoff: Backoff = WS_RECONNECT,
        ws_idle_timeout_s: float = 10.0,
        close_grace_s: float = 2.0,
        request_timeout_s: float = 10.0,
        rate_per_s: float = 25.0,
        max_clock_skew_s: float = 5.0,
        order_lookup_pages: int = 5,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``api_key`` is the CDP key name (``organizations/.../apiKeys/...``), ``api_secret`` its
        private key PEM."""
        self.clock = clock or SystemClock()
        self.signer = CoinbaseSigner(api_key, api_secret) if api_key and api_secret else None
        self.rest = CoinbaseRest(base_url=rest_url, signer=self.signer, retry=retry, timeout_s=request_timeout_s,
                                 rate_per_s=rate_per_s, sleep=sleep, transport=transport)
        self.ws_url, self.ws_user_url = ws_url, ws_user_url
        self.retry, self.submit_attempts = retry, max(1, submit_attempts)
        self.ws_backoff, self.ws_idle_timeout_s, self.close_grace_s = ws_backoff, ws_idle_timeout_s, close_grace_s
        self.max_clock_skew_s = max_clock_skew_s
        self.order_lookup_pages = order_lookup_pages
        self._sleep = sleep
        self._symbols: CoinbaseSymbols | None = None
        self._started = False
        self._order_id_by_cid: dict[str, str] = {}
        self._cid_by_order_id: dict[str, str] = {}

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

    async def symbols(self) -> CoinbaseSymbols:
        if self._symbols is None:
            payload = await self.rest.request("GET", "/products", params={"product_type": "SPOT"}, retry=True)
            self._symbols = CoinbaseSymbols.from_products(payload)
        return self._symbols

    async def markets(self) -> dict[str, Market]:
        return (await self.symbols()).markets()

    async def balances(self) -> dict[str, Balance]:
        accounts: list[Any] = []
        cursor = None
        for _ in range(20):
            params = {"limit": 250, **({"cursor": cursor} if cursor else {})}
            page = await self.rest.request("GET", "/accounts", params=params, retry=True)
            accounts.extend(page.get("accounts") or [])
            cursor = page.get("cursor")
            if not page.get("has_next") or not cursor:
                break
        return parse.parse_accounts(accounts)

    # -- orders ---------------------------------------------------------------------------------

    def _remember(self, order: Order) -> Order:
        if order.client_order_id:
            self._order_id_by_cid[order.client_order_id] = order.venue_order_id
            self._cid_by_order_id[order.venue_order_id] = order.client_order_id
        return order

    async def _get(self, order_id: str) -> Order:
        payload = await self.rest.request("GET", f"/orders/historical/{order_id}", retry=True)
        if not isinstance(payload.get("order"), dict):
            raise MalformedResponse("Coinbase get order: no 'order' object")
        return self._remember(parse.parse_order(payload["order"], await self.symbols()))

    async def _list_orders(self, params: list[tuple[str, Any]], pages: int) -> AsyncIterator[Order]:
        symbols = await self.symbols()
        cursor = None
        for _ in range(pages):
            page_params = params + ([("cursor", cursor)] if cursor else [])
            page = await self.rest.request("GET", "/orders/historical/batch", params=page_params, retry=True)
            for raw in page.get("orders") or []:
                if raw.get("product_type", "SPOT") == "SPOT":
                    try:
                        yield self._remember(parse.parse_order(raw, symbols))
                    except UnknownPair:
                        continue
            cursor = page.get("cursor")
            if not page.get("has_next") or not cursor:
                return

    async def _find(self, client_order_id: str, pair: str | None = None) -> Order | None:
        """Scan recent orders for our client id (Coinbase cannot filter on it)."""
        params: list[tuple[str, Any]] = [("limit", 100)]
        if pair:
            params.append(("product_ids", (await self.symbols()).by_pair(pair).product_id))
        async for order in self._list_orders(params, self.order_lookup_pages):
            if order.client_order_id == client_order_id:
                return order
        return None

    def order_body(self, request: OrderRequest, product_id: str) -> dict[str, Any]:
        config: dict[str, dict[str, str | bool]]
        if request.type is OrderType.MARKET:
            config = {"market_market_ioc": {"base_size": _fmt(request.qty)}}
        else:
            assert request.limit_price is not None
            config = {"limit_limit_gtc": {"base_size": _fmt(request.qty), "limit_price": _fmt(request.limit_price),
                                          "post_only": False}}
        return {"client_order_id": request.client_order_id, "product_id": product_id,
                "side": request.side.value.upper(), "order_configuration": config}

    async def place_order(self, request: OrderRequest) -> Order:
        product = (await self.symbols()).by_pair(request.pair)
        check_order(request, product.market, "Coinbase")
        known = self._order_id_by_cid.get(request.client_order_id)
        if known:
            return await self._get(known)
        body = self.order_body(request, product.product_id)

        async def submit() -> dict[str, Any]:
            reply: dict[str, Any] = await self.rest.request("POST", "/orders", body=body, retry=False)
            return reply

        policy = RetryPolicy(self.submit_attempts, self.retry.backoff)
        outcome = await submit_with_lookup(submit, lambda: self._find(request.client_order_id, request.pair),
                                           policy, what=f"order {request.client_order_id}: submit",
                                           sleep=self._sleep)
        if isinstance(outcome, Order):
            return outcome
        reply = outcome
        if not reply.get("success"):
            failure = reply.get("error_response") or {}
            if "DUPLICATE" in str(failure.get("error", "")).upper():
                found = await self._find(request.client_order_id, request.pair)
                if found is not None:
                    return found
            raise order_failure(failure, f"Coinbase order {request.client_order_id}") from CoinbaseOrderRefused(failure)
        order_id = str((reply.get("success_response") or {}).get("order_id") or reply.get("order_id") or "")
        if not order_id:
            raise MalformedResponse("Coinbase create order: success without an order_id")
        self._order_id_by_cid[request.client_order_id] = order_id
        self._cid_by_order_id[order_id] = request.client_order_id
        try:
            return await self._get(order_id)
        except TemporaryError:
            return Order(client_order_id=request.client_order_id, venue_order_id=order_id, pair=request.pair,
                         side=request.side, type=request.type, qty=request.qty, status=OrderStatus.SUBMITTED,
                         limit_price=request.limit_price, created_at=self.clock.now())

    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None:
        order_id = self._order_id_by_cid.get(client_order_id)
        if order_id:
            try:
                return await self._get(order_id)
            except OrderNotFound:
                pass
        return await self._find(client_order_id, pair)

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        order = await self.fetch_order(pair, client_order_id)
        if order is None:
            raise OrderNotFound(f"coinbase has no order {client_order_id}")
        if order.status.is_final:
            return order
        reply = await self.rest.request("POST", "/orders/batch_cancel", body={"order_ids": [order.venue_order_id]},
                                        retry=True)
        results = reply.get("results") or []
        if results and not results[0].get("success"):
            log.info("cancel %s refused (%s); reading its state", client_order_id, results[0].get("failure_reason"))
        return await self._get(order.venue_order_id)

    async def open_orders(self, pair: str | None = None) -> list[Order]:
        params: list[tuple[str, Any]] = [("order_status", "OPEN"), ("limit", 100)]
        if pair:
            params.append(("product_ids", (await self.symbols()).by_pair(pair).product_id))
        return [o async for o in self._list_orders(params, 50)]

    # -- fills ----------------------------------------------------------------------------------

    @staticmethod
    def cursor_at(moment: datetime, ids: Iterable[str] = ()) -> str:
        return f"{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}|{','.join(sorted(ids))}"

    async def fills_since(self, cursor: str | None) -> FillsPage:
        """Fills after ``cursor`` (``"<sequence time>|<entry ids at that time>"``), oldest first."""
        fills, new_cursor = await self.fills_after(cursor, page_limit=500)
        return FillsPage(fills=fills, cursor=new_cursor)

    async def fills_after(self, cursor: str | None, page_limit: int = 5000) -> tuple[list[Fill], str | None]:
        boundary_ts: datetime | None = None
        boundary_ids: set[str] = set()
        params: list[tuple[str, Any]] = [("limit", FILLS_PAGE)]
        if cursor:
            ts_text, _, ids = cursor.partition("|")
            boundary_ts, boundary_ids = utc_from_iso(ts_text), set(filter(None, ids.split(",")))
            params.append(("start_sequence_timestamp", ts_text))
        raw_fills: list[tuple[datetime, str, dict[str, Any]]] = []
        page_cursor = None
        for _ in range(50):
            paging: list[tuple[str, Any]] = [("cursor", page_cursor)] if page_cursor else []
            page = await self.rest.request("GET", "/orders/historical/fills", params=params + paging, retry=True)
            for raw in page.get("fills") or []:
                seq = utc_from_iso(raw.get("sequence_timestamp") or raw["trade_time"])
                entry = str(raw.get("entry_id") or raw.get("trade_id"))
                if boundary_ts is None or seq > boundary_ts or (seq == boundary_ts and entry not in boundary_ids):
                    raw_fills.append((seq, entry, raw))
            page_cursor = page.get("cursor")
            if not page.get("fills") or not page_cursor:
                break
        raw_fills.sort(key=lambda t: (t[0], t[1]))
        raw_fills = raw_fills[:page_limit]
        if not raw_fills:
            return [], cursor
        await self._learn_client_ids({r["order_id"] for _, _, r in raw_fills})
        symbols = await self.symbols()
        fills = [parse.parse_fill(r, symbols, self._cid_by_order_id.get(r["order_id"], "")) for _, _, r in raw_fills
                 if r.get("product_id") in {p.product_id for p in symbols.products}]
        last_ts = raw_fills[-1][0]
        last_ids = {e for ts, e, _ in raw_fills if ts == last_ts} | (boundary_ids if last_ts == boundary_ts else set())
        return fills, self.cursor_at(last_ts, last_ids)

    async def _learn_client_ids(self, order_ids: set[str]) -> None:
        for order_id in sorted(order_ids - set(self._cid_by_order_id)):
            try:
                await self._get(order_id)
            except (OrderNotFound, UnknownPair):
                self._cid_by_order_id[order_id] = ""

    # -- market data ----------------------------------------------------------------------------

    async def ticker(self, pair: str) -> Ticker:
        product = (await self.symbols()).by_pair(pair)
        payload = await self.rest.request("GET", f"/products/{product.product_id}/ticker", params={"limit": 1},
                                          retry=True, not_found=UnknownPair)
        return parse.parse_ticker(payload, pair, self.clock.now())

    async def order_book(self, pair: str, depth: int = 10) -> OrderBook:
        product = (await self.symbols()).by_pair(pair)
        payload = await self.rest.request("GET", "/product_book",
                                          params={"product_id": product.product_id, "limit": depth},
                                          retry=True, not_found=UnknownPair)
        return parse.parse_book(payload, pair, self.clock.now())

    def candle_params(self, timeframe_s: int, start: datetime, end: datetime) -> dict[str, Any]:
        if timeframe_s not in GRANULARITY:
            raise ExchangeError(f"coinbase has no {timeframe_s}s candles")
        return {"start": epoch_seconds(start), "end": epoch_seconds(end), "granularity": GRANULARITY[timeframe_s]}

    async def candles(self, pair: str, timeframe_s: int, since: datetime | None = None,
                      limit: int = 500) -> list[Candle]:
        """Closed candles only (Coinbase's newest row is still running), oldest first."""
        product = (await self.symbols()).by_pair(pair)
        now, span = self.clock.now(), timedelta(seconds=timeframe_s)
        start = since if since is not None else now - span * limit
        rows: dict[datetime, Candle] = {}
        remaining = limit
        while start < now and remaining > 0:
            count = min(remaining, MAX_CANDLES_PER_CALL)
            end = min(start + span * count, now)
            remaining -= count
            payload = await self.rest.request("GET", f"/products/{product.product_id}/candles",
                                              params=self.candle_params(timeframe_s, start, end), retry=True,
                                              not_found=UnknownPair)
            for candle in parse.parse_candles(payload, pair, timeframe_s):
                rows[candle.ts] = candle
            start = end
        closed = [c for ts, c in sorted(rows.items()) if ts + span <= now and (since is None or ts >= since)]
        return closed[:limit] if since is not None else closed[-limit:]

    def _jwt(self) -> str | None:
        return self.signer.ws_jwt() if self.signer else None

    def market_events(self, pairs: list[str], timeframe_s: int) -> StreamFeed:
        """Closed candles and tickers, ``FeedStatus`` on disconnect/reconnect, REST gap fill between.
        Pairs can be added and removed while it runs (:class:`~exchanges.base.PairSubscriptions`)."""

        async def gap(pair: str, after: datetime) -> list[Candle]:
            return [c for c in await self.candles(pair, timeframe_s, since=after, limit=1000) if c.ts > after]

        async def resolve(pair: str) -> CoinbaseProduct:
            return (await self.symbols()).by_pair(pair)

        async def build() -> MarketSession:
            symbols = await self.symbols()
            if timeframe_s not in GRANULARITY:
                raise ExchangeError(f"coinbase has no {timeframe_s}s candles")
            return MarketSession(self.ws_url, [symbols.by_pair(p) for p in pairs], timeframe_s, self.clock,
                                 self._jwt, gap, self.close_grace_s, resolve=resolve)

        return StreamFeed(build, clock=self.clock, backoff=self.ws_backoff, idle_timeout_s=self.ws_idle_timeout_s,
                          sleep=self._sleep)

    async def private_events(self) -> AsyncIterator[PrivateEvent]:
        """Own order updates from the ``user`` channel, the fills behind them, and ``FeedStatus``."""
        symbols = await self.symbols()
        session = UserSession(self.ws_user_url, symbols, self.clock, self._jwt, self.fills_after,
                              lambda: self.cursor_at(self.clock.now()))
        async for event in run_feed(session, clock=self.clock, backoff=self.ws_backoff,
                                    idle_timeout_s=self.ws_idle_timeout_s, sleep=self._sleep):
            if isinstance(event, Order):
                self._remember(event)
            yield event

    # -- preflight ------------------------------------------------------------------------------

    async def preflight(self, pairs: Sequence[str]) -> list[PreflightCheck]:
        """Keys, transfer permission, clock skew, balances and minimum order per pair."""
        return await run_preflight(self, list(pairs), clock=self.clock, max_skew_s=self.max_clock_skew_s,
                                   holdings="account(s)",
                                   permission=lambda _keys_ok: guarded("no transfer permission",
                                                                       lambda: permission_check(self.rest)),
                                   venue_time=lambda: venue_time(self.rest))
