"""Any exchange ccxt reaches, as an :class:`exchanges.base.LiveExchange` (``trading.venue = "ccxt:<id>"``).

The native Kraken and Coinbase adapters stay the first-class path; this one trades through ccxt's async
classes (``ccxt.async_support``, or the ``ccxt.pro`` class of the same exchange when WebSocket streams
are wanted: it is the REST class plus ``watch_*``). What differs from the native adapters:

- **Client order ids.** Where ccxt sends our id (:data:`exchanges.ccxt.catalog.CLIENT_ID_EXCHANGES`;
  Kraken's ``cl_ord_id``, Coinbase's ``client_order_id``) an order is found by scanning open then closed
  orders for it, as the native adapters do. Elsewhere the fallback is a map of our id to the venue's
  order id kept in memory: idempotency and look-ups hold within one process, but an order whose submit
  answer was lost *and* whose process then restarted cannot be found by our id (reconciliation at start
  sees it as a venue order we do not know). ``capabilities.client_order_ids`` says which case applies.
- **Numbers.** ccxt returns floats; each is converted through ``str`` (:mod:`exchanges.ccxt.convert`).
- **Errors.** ccxt's tree is translated at this edge (:mod:`exchanges.ccxt.errors`).
- **Rate limits.** ccxt's own throttle (``enableRateLimit``) spaces requests by the exchange's
  documented ``rateLimit``; a 429 still raised becomes :class:`~exchanges.errors.RateLimited`.
- **Nonces** (Kraken) are ccxt's, from the clock in milliseconds, not the database-kept high-water mark
  of the native adapter: two processes sharing one key may be refused (``EAPI:Invalid nonce``).
- **Market data** from ccxt.pro's ``watch_ohlcv``/``watch_ticker`` when the exchange has them, else by
  polling REST (:mod:`exchanges.ccxt.streams`). The account's events are always polled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from exchanges._http import reveal
from exchanges._validate import check_order
from exchanges.base import (
    Balance,
    Candle,
    Capabilities,
    FillsPage,
    Market,
    MarketEvent,
    Order,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    PreflightCheck,
    PrivateEvent,
    Side,
    Ticker,
)
from exchanges.ccxt import convert, streams
from exchanges.ccxt._lib import ccxt
from exchanges.ccxt.catalog import client_id_param, exchange_class, has_client_ids, unknown_venue
from exchanges.ccxt.errors import call
from exchanges.ccxt.fills import FillCursor
from exchanges.ccxt.preflight import ccxt_preflight
from exchanges.clock import Clock, SystemClock
from exchanges.errors import ExchangeError, InvalidOrder, OrderNotFound, UnknownPair
from exchanges.retry import DEFAULT_RETRY, RetryPolicy, Sleep, submit_with_lookup, with_retries

log = logging.getLogger(__name__)
T = TypeVar("T")

# Per-exchange ccxt options. Coinbase: balances from the Advanced Trade accounts and the time from the
# Advanced Trade clock (both v3), as the native adapter reads them, rather than ccxt's v2 defaults.
VENUE_OPTIONS: dict[str, dict[str, Any]] = {"coinbase": {"fetchBalance": "v3PrivateGetBrokerageAccounts",
                                                         "fetchTime": "v3PublicGetBrokerageTime"}}
# Coinbase: ccxt sends a market buy as quote money to spend (``quote_size`` = qty x price); our orders are
# in base units, so the order configuration is given in ``base_size`` as the native adapter sends it.
BASE_SIZED_MARKET_BUYS = frozenset({"coinbase", "coinbaseadvanced"})


class CcxtExchange:
    """One ccxt exchange behind our Protocol. ``exchange_id`` is ccxt's id (``kraken``, ``binance``)."""

    def __init__(
        self,
        exchange_id: str,
        api_key: SecretStr | str | None = None,
        api_secret: SecretStr | str | None = None,
        password: SecretStr | str | None = None,
        *,
        sandbox: bool = False,
        rest_url: str | None = None,
        ws_url: str | None = None,
        websocket: bool = True,
        poll_interval_s: float = 5.0,
        rate_limit_ms: int | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        submit_attempts: int = 3,
        request_timeout_s: float = 10.0,
        max_clock_skew_s: float = 5.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        try:
            cls = exchange_class(exchange_id, websocket=websocket)
        except KeyError:
            raise ExchangeError(unknown_venue(exchange_id)) from None
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(request_timeout_s * 1000)}
        for field, value in (("apiKey", api_key), ("secret", api_secret), ("password", password)):
            if value is not None and reveal(value).strip():
                config[field] = reveal(value).strip()
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        self.ex: Any = cls(config)
        self.ex.options.update(VENUE_OPTIONS.get(exchange_id, {}))
        if sandbox:
            if not self.ex.urls.get("test"):  # ccxt 4.5 fails with a TypeError there, not NotSupported
                raise ExchangeError(f"ccxt's {exchange_id} has no sandbox (test) URLs")
            self.ex.set_sandbox_mode(True)
        override_urls(self.ex.urls, rest_url, ws_url)
        self.exchange_id = exchange_id
        self.name = f"ccxt:{exchange_id}"
        self.client_ids = has_client_ids(cls)
        self.client_id_param = client_id_param(cls)
        self.streaming = websocket and bool(self.ex.has.get("watchOHLCV"))
        self.timeframes: dict[int, str] = {int(self.ex.parse_timeframe(k)): str(k) for k in (self.ex.timeframes or {})}
        self.capabilities = Capabilities(client_order_ids=self.client_ids, websocket_market_data=self.streaming,
                                         private_stream=True, timeframes_s=tuple(sorted(self.timeframes)))
        self.clock = clock or SystemClock()
        self.retry, self.submit_attempts = retry, max(1, submit_attempts)
        self.poll_interval_s, self.max_clock_skew_s = poll_interval_s, max_clock_skew_s
        self.sleep = sleep
        self._markets: dict[str, Market] | None = None
        self._venue_ids: dict[str, str] = {}  # our client order id -> venue order id
        self._cids: dict[str, str] = {}       # venue order id -> our client order id
        # the pairs the service trades (from market_events/preflight) and those it placed orders in: where a
        # venue that answers only per symbol (Binance) is asked for open orders and trades
        self.traded_pairs: set[str] = set()
        self._fills = FillCursor(self)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.markets()

    async def stop(self) -> None:
        try:
            await self.ex.close()
        except Exception:  # closing a session must never mask the shutdown
            log.warning("closing ccxt %s failed", self.exchange_id, exc_info=True)

    async def q(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        """A call that is safe to repeat: translated errors, retried when the type says so."""
        async def once() -> T:  # a coroutine function: tenacity awaits only those
            return await call(make(), self.ex)

        return await with_retries(once, self.retry, what=f"{self.name} {what}", sleep=self.sleep)

    # -- reference data ---------------------------------------------------------------------------

    async def markets(self) -> dict[str, Market]:
        if self._markets is None:
            raw = await self.q(lambda: self.ex.load_markets(), "load_markets")
            mode = int(self.ex.precisionMode)
            found = (convert.market(m, mode) for m in raw.values())
            self._markets = {m.pair: m for m in found if m is not None}
        return self._markets

    async def market(self, pair: str) -> Market:
        found = (await self.markets()).get(pair)
        if found is None:
            raise UnknownPair(f"{self.name} does not list {pair}")
        return found

    async def balances(self) -> dict[str, Balance]:
        return convert.balances(await self.q(lambda: self.ex.fetch_balance(), "fetch_balance"))

    # -- orders -------------------------------------------------------------------------------------

    def cid_for(self, venue_id: str) -> str | None:
        return self._cids.get(venue_id)

    def remember(self, client_order_id: str, venue_id: str) -> None:
        if venue_id:
            self._venue_ids[client_order_id], self._cids[venue_id] = venue_id, client_order_id

    def to_order(self, raw: dict[str, Any], cid: str = "") -> Order:
        order = convert.order(raw, self.cid_for, fallback_cid=cid, echoed=self.client_ids)
        if cid and order.client_order_id == cid:
            self.remember(cid, order.venue_order_id)
        return order

    async def place_order(self, request: OrderRequest) -> Order:
        """Idempotent on ``client_order_id``: an order the venue (or, without client ids, this process)
        already has under the id is returned instead of placing a second one."""
        market = await self.market(request.pair)
        check_order(request, market, self.name)
        existing = await self.fetch_order(request.pair, request.client_order_id)
        if existing is not None:
            return existing
        policy = RetryPolicy(attempts=self.submit_attempts, backoff=self.retry.backoff)
        return await submit_with_lookup(lambda: self._submit(request, market),
                                        lambda: self.fetch_order(request.pair, request.client_order_id),
                                        policy, what=f"{self.name} order {request.client_order_id}",
                                        sleep=self.sleep)

    async def _submit(self, request: OrderRequest, market: Market) -> Order:
        params: dict[str, Any] = {}
        self.traded_pairs.add(request.pair)
        if self.client_ids:
            params[self.client_id_param] = request.client_order_id
        price = float(request.limit_price) if request.limit_price is not None else None
        symbol = market.venue_symbol
        if request.type is OrderType.MARKET and request.side is Side.BUY:
            if self.exchange_id in BASE_SIZED_MARKET_BUYS:
                size = self.ex.amount_to_precision(symbol, float(request.qty))
                params["order_configuration"] = {"market_market_ioc": {"base_size": size}}
                params["createMarketBuyOrderRequiresPrice"] = False
            elif self.ex.options.get("createMarketBuyOrderRequiresPrice"):
                price = float((await self.ticker(request.pair)).ask)  # ccxt spends qty x price of quote
        side, kind = request.side.value, request.type.value
        created = self.ex.create_order(symbol, kind, side, float(request.qty), price, params)
        raw: dict[str, Any] = await call(created, self.ex)
        if not raw.get("id"):
            raise InvalidOrder(f"{self.name} accepted order {request.client_order_id} without an order id")
        defaults = {"symbol": symbol, "type": request.type.value, "side": request.side.value,
                    "amount": str(request.qty), "price": None if price is None else str(request.limit_price)}
        self.remember(request.client_order_id, str(raw["id"]))
        merged = {**defaults, **{k: v for k, v in raw.items() if v is not None}}
        return self.to_order(merged, request.client_order_id)

    def _symbol(self, pair: str | None) -> str | None:
        if pair is None:
            return None
        found = (self._markets or {}).get(pair)
        return found.venue_symbol if found else pair

    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None:
        symbol = self._symbol(pair)
        venue_id = self._venue_ids.get(client_order_id)
        if venue_id is not None:
            try:
                raw = await self.q(lambda: self.ex.fetch_order(venue_id, symbol), "fetch_order")
            except OrderNotFound:
                return None
            return self.to_order(raw, client_order_id)
        if not self.client_ids:
            return None  # the documented fallback: only orders this process placed can be found
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            if not self.ex.has.get(_camel(method)):
                continue
            # the default binds the loop's value; mypy cannot infer a lambda with a default argument
            rows = await self.q(lambda m=method: getattr(self.ex, m)(symbol), method)  # type: ignore[misc]
            for raw in rows:
                if raw.get("clientOrderId") == client_order_id:
                    return self.to_order(raw, client_order_id)
        return None

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        order = await self.fetch_order(pair, client_order_id)
        if order is None:
            raise OrderNotFound(f"{self.name} has no order {client_order_id}")
        if order.status.is_final:
            return order
        try:
            await self.q(lambda: self.ex.cancel_order(order.venue_order_id, self._symbol(pair)), "cancel_order")
        except OrderNotFound:
            pass  # closed meanwhile (or an earlier attempt succeeded): report what it became
        after = await self.fetch_order(pair, client_order_id) or order
        if not after.status.is_final:  # the venue accepted the cancel but still reports the order open
            after = dataclasses.replace(after, status=OrderStatus.CANCELLED)
        return after

    async def open_orders(self, pair: str | None = None) -> list[Order]:
        try:
            rows = await self.q(lambda: self.ex.fetch_open_orders(self._symbol(pair)), "fetch_open_orders")
        except ExchangeError as exc:
            if pair is not None or not isinstance(exc.__cause__, ccxt.ArgumentsRequired):
                raise
            rows = []
            for each in sorted(self.traded_pairs):
                # the default binds the loop's value; mypy cannot infer a lambda with a default argument
                rows += await self.q(lambda p=each: self.ex.fetch_open_orders(self._symbol(p)),  # type: ignore[misc]
                                     "fetch_open_orders")
        orders = [self.to_order(r) for r in rows]
        return [o for o in orders if pair is None or o.pair == pair]

    async def fills_since(self, cursor: str | None) -> FillsPage:
        return await self._fills.page(cursor)

    # -- market data ----------------------------------------------------------------------------------

    async def ticker(self, pair: str) -> Ticker:
        symbol = (await self.market(pair)).venue_symbol
        return convert.ticker(pair, await self.q(lambda: self.ex.fetch_ticker(symbol), "fetch_ticker"),
                              self.clock.now())

    async def order_book(self, pair: str, depth: int = 10) -> OrderBook:
        symbol = (await self.market(pair)).venue_symbol
        raw = await self.q(lambda: self.ex.fetch_order_book(symbol, depth), "fetch_order_book")
        return convert.order_book(pair, raw, depth, self.clock.now())

    def timeframe(self, timeframe_s: int) -> str:
        if timeframe_s not in self.timeframes:
            raise ExchangeError(f"{self.name} has no {timeframe_s}s candles; it has {sorted(self.timeframes)}")
        return self.timeframes[timeframe_s]

    async def candles(self, pair: str, timeframe_s: int, since: datetime | None = None,
                      limit: int = 500) -> list[Candle]:
        """Closed candles only: a row whose period has not ended yet is still running and is dropped."""
        symbol, tf = (await self.market(pair)).venue_symbol, self.timeframe(timeframe_s)
        since_ms = None if since is None else int(since.timestamp() * 1000)
        rows = await self.q(lambda: self.ex.fetch_ohlcv(symbol, tf, since_ms, limit), "fetch_ohlcv")
        now = self.clock.now().timestamp()
        out = sorted({c.ts: c for c in (convert.candle(pair, timeframe_s, r) for r in rows)
                      if c.ts.timestamp() + timeframe_s <= now}.values(), key=lambda c: c.ts)
        return out[:limit] if since is not None else out[-limit:]

    def market_events(self, pairs: list[str], timeframe_s: int) -> AsyncIterator[MarketEvent]:
        self.traded_pairs.update(pairs)
        if self.streaming:
            return streams.watch_market(self, pairs, timeframe_s)
        return streams.poll_market(self, pairs, timeframe_s)

    def private_events(self) -> AsyncIterator[PrivateEvent]:
        return streams.poll_private(self)

    async def preflight(self, pairs: Sequence[str]) -> list[PreflightCheck]:
        self.traded_pairs.update(pairs)
        return await ccxt_preflight(self, list(pairs))


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)


def override_urls(urls: dict[str, Any], rest_url: str | None, ws_url: str | None) -> None:
    """Point every REST (``http...``) and WebSocket (``ws...``) URL in ``urls['api']`` at the overrides,
    whatever names the exchange class gives its APIs (Kraken: public/private; Coinbase: rest)."""

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, str):
            if rest_url and node.startswith("http"):
                return rest_url
            if ws_url and node.startswith("ws"):
                return ws_url
        return node

    if rest_url or ws_url:
        urls["api"] = swap(urls.get("api"))
