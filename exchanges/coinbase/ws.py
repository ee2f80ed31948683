"""Coinbase Advanced Trade WebSocket: sessions for :func:`exchanges._stream.run_feed`.

Market data (``wss://advanced-trade-ws.coinbase.com``): ``heartbeats`` (one per second, keeps the
connection open and lets the runner spot a dead link), ``ticker``, and ``candles``. Coinbase
streams candles only at five minutes; other timeframes are read from REST as each bar closes.
User data (``wss://advanced-trade-ws-user.coinbase.com``): the ``user`` channel (order updates);
when an order's filled quantity grows, the exact fills with fees are read from REST.

Every message carries ``sequence_num``; a jump means messages were lost, and the session
re-reads candles from REST instead of trusting its running state.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from exchanges._http import dec, dec_or_zero, loads, utc_from_epoch, utc_from_iso
from exchanges._stream import CandleCloser, send_quietly
from exchanges.base import Candle, Fill, Order, OrderType, Ticker
from exchanges.clock import Clock
from exchanges.coinbase.parse import order_status, side
from exchanges.coinbase.symbols import CoinbaseProduct, CoinbaseSymbols
from exchanges.errors import AuthError, ExchangeError, MalformedResponse, TemporaryError

log = logging.getLogger(__name__)
WS_CANDLE_S = 300
CandleSource = Callable[[str, datetime], Awaitable[list[Candle]]]


def subscribe_message(channel: str, product_ids: Sequence[str] | None, jwt: str | None,
                      kind: str = "subscribe") -> str:
    body: dict[str, Any] = {"type": kind, "channel": channel}
    if product_ids:
        body["product_ids"] = list(product_ids)
    if jwt:
        body["jwt"] = jwt
    return json.dumps(body)


class _Sequenced:
    """Shared handling of envelopes: errors end or restart the stream, gaps are noted."""

    name = "coinbase"

    def __init__(self) -> None:
        self._seq: int | None = None
        self.gap_seen = False

    def _envelope(self, raw: str | bytes) -> dict[str, Any]:
        msg = loads(raw, what="Coinbase WebSocket message")
        if not isinstance(msg, dict):
            raise MalformedResponse("Coinbase WebSocket: message is not an object")
        if msg.get("type") == "error":
            text = str(msg.get("message") or msg.get("reason") or "error")
            if "auth" in text.lower() or "jwt" in text.lower():
                raise AuthError(f"Coinbase WebSocket: {text}")
            raise TemporaryError(f"Coinbase WebSocket: {text}")
        seq = msg.get("sequence_num")
        if isinstance(seq, int):
            if self._seq is not None and seq > self._seq + 1:
                log.warning("%s: sequence jumped %d -> %d; resyncing", self.name, self._seq, seq)
                self.gap_seen = True
            self._seq = seq
        return msg

    def on_disconnect(self) -> None:
        self._seq = None


class MarketSession(_Sequenced):
    """``ticker`` (and ``candles`` at five minutes, else REST polls) for a set of products that can change
    on the open connection (:class:`~exchanges._stream.PairSession`): ``add`` subscribes the new product,
    ``remove`` unsubscribes it, a reconnect subscribes the set as it is then. Messages of a removed
    product still in flight are dropped."""

    def __init__(self, ws_url: str, products: Sequence[CoinbaseProduct], timeframe_s: int, clock: Clock,
                 jwt: Callable[[], str | None], rest_candles: CandleSource, close_grace_s: float = 2.0,
                 resolve: Callable[[str], Awaitable[CoinbaseProduct]] | None = None) -> None:
        super().__init__()
        self._resolve = resolve
        self._ws: ClientConnection | None = None
        self.name = "coinbase:market"
        self._url = ws_url
        self.products = list(products)
        self._pair = {p.product_id: p.pair for p in products}
        self.timeframe_s = timeframe_s
        self.clock = clock
        self._jwt = jwt
        self._rest_candles = rest_candles
        self.closer = CandleCloser(timeframe_s, clock, close_grace_s)
        self.grace = timedelta(seconds=close_grace_s)
        self._next_poll: datetime | None = None

    @property
    def streams_candles(self) -> bool:
        return self.timeframe_s == WS_CANDLE_S

    async def url(self) -> str:
        return self._url

    async def on_open(self, ws: ClientConnection) -> None:
        if not self.streams_candles and self._next_poll is None:
            self._next_poll = self._bar_start(self.clock.now()) + timedelta(seconds=self.timeframe_s) + self.grace
        self._ws = ws
        await ws.send(subscribe_message("heartbeats", None, self._jwt()))
        for message in self._subscribes([p.product_id for p in self.products]):
            await ws.send(message)

    def _subscribes(self, ids: list[str], kind: str = "subscribe") -> list[str]:
        channels = ("ticker", "candles") if self.streams_candles else ("ticker",)
        return [subscribe_message(channel, ids, self._jwt(), kind) for channel in channels]

    async def add(self, pair: str) -> None:
        """Stream ``pair`` from now on; raises UnknownPair for a product Coinbase does not list."""
        if any(p.pair == pair for p in self.products):
            return
        if self._resolve is None:
            raise ExchangeError(f"{self.name}: this stream was built without symbols; cannot add {pair}")
        found = await self._resolve(pair)
        self._pair[found.product_id] = found.pair
        self.products.append(found)
        await send_quietly(self._ws, self.name, *self._subscribes([found.product_id]))

    async def remove(self, pair: str) -> None:
        gone = [p for p in self.products if p.pair == pair]
        if not gone:
            return
        self.products = [p for p in self.products if p.pair != pair]
        self.closer.forget(pair)
        await send_quietly(self._ws, self.name, *self._subscribes([gone[0].product_id], "unsubscribe"))

    async def on_message(self, raw: str | bytes) -> Sequence[Any]:
        msg = self._envelope(raw)
        channel = msg.get("channel")
        out: list[Any] = []
        streamed = {p.pair for p in self.products}
        try:
            if channel == "ticker":
                ts = utc_from_iso(msg["timestamp"]) if msg.get("timestamp") else self.clock.now()
                for event in msg.get("events") or ():
                    for t in event.get("tickers") or ():
                        if self._pair_of(t["product_id"]) not in streamed:
                            continue  # unsubscribed; its last messages were in flight
                        out.append(Ticker(self._pair_of(t["product_id"]), dec(t["best_bid"]), dec(t["best_ask"]),
                                          dec(t["price"]), ts))
            elif channel == "candles" and self.streams_candles:
                for event in msg.get("events") or ():
                    for c in event.get("candles") or ():
                        if self._pair_of(c["product_id"]) not in streamed:
                            continue
                        candle = Candle(self._pair_of(c["product_id"]), WS_CANDLE_S, utc_from_epoch(c["start"]),
                                        dec(c["open"]), dec(c["high"]), dec(c["low"]), dec(c["close"]),
                                        dec(c["volume"]))
                        out.extend(self.closer.update(candle))
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedResponse(f"Coinbase {channel}: bad event ({exc!r})") from exc
        return out

    def _pair_of(self, product_id: str) -> str:
        try:
            return self._pair[product_id]
        except KeyError:
            raise MalformedResponse(f"Coinbase WebSocket: unexpected product {product_id!r}") from None

    async def on_tick(self) -> Sequence[Any]:
        out: list[Any] = list(self.closer.tick())
        if self.gap_seen:
            self.gap_seen = False
            out.extend(await self.resync())
        if not self.streams_candles:
            out.extend(await self._poll())
        return out

    async def _poll(self) -> list[Candle]:
        """REST candles for timeframes the WebSocket does not stream, once per closed bar."""
        now = self.clock.now()
        span = timedelta(seconds=self.timeframe_s)
        bar_start = self._bar_start(now)
        if self._next_poll is None or now < self._next_poll:
            return []
        out: list[Candle] = []
        try:
            for p in list(self.products):
                since = self.closer.last_closed(p.pair) or bar_start - 2 * span  # exclusive
                out.extend(self.closer.update_many(await self._rest_candles(p.pair, since)))
        except TemporaryError as exc:
            log.warning("%s: candle poll failed (%s); trying again shortly", self.name, exc)
            self._next_poll = now + timedelta(seconds=5)
            return out
        self._next_poll = bar_start + span + self.grace
        return out

    def _bar_start(self, now: datetime) -> datetime:
        return datetime.fromtimestamp(now.timestamp() // self.timeframe_s * self.timeframe_s, now.tzinfo)

    def on_disconnect(self) -> None:
        super().on_disconnect()
        self._ws = None
        self.closer.drop_running()

    async def resync(self) -> Sequence[Any]:
        out: list[Any] = []
        for p in list(self.products):
            since = self.closer.last_closed(p.pair)
            if since is not None:
                out.extend(self.closer.update_many(await self._rest_candles(p.pair, since)))
        return out


FillSource = Callable[[str | None], Awaitable[tuple[list[Fill], str | None]]]


class UserSession(_Sequenced):
    """The ``user`` channel: :class:`Order` updates, and the fills behind them from REST."""

    def __init__(self, ws_url: str, symbols: CoinbaseSymbols, clock: Clock, jwt: Callable[[], str | None],
                 fills_after: FillSource, start_cursor: Callable[[], str]) -> None:
        super().__init__()
        self.name = "coinbase:user"
        self._url = ws_url
        self.symbols = symbols
        self.clock = clock
        self._jwt = jwt
        self._fills_after = fills_after
        self._start_cursor = start_cursor
        self.cursor: str | None = None
        self._filled: dict[str, Decimal] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def url(self) -> str:
        return self._url

    async def on_open(self, ws: ClientConnection) -> None:
        jwt = self._jwt()
        if not jwt:
            raise AuthError("Coinbase user channel: no API key configured")
        if self.cursor is None:
            self.cursor = self._start_cursor()
        await ws.send(subscribe_message("heartbeats", None, jwt))
        await ws.send(subscribe_message("user", None, jwt))

    async def on_message(self, raw: str | bytes) -> Sequence[Any]:
        msg = self._envelope(raw)
        if msg.get("channel") != "user":
            return ()
        out: list[Any] = []
        grew = False
        for event in msg.get("events") or ():
            for raw_order in event.get("orders") or ():
                order = self._order(raw_order)
                if order is None:
                    continue
                if order.filled_qty > self._filled.get(order.venue_order_id, Decimal(0)):
                    grew = True
                self._filled[order.venue_order_id] = order.filled_qty
                out.append(order)
        if grew:
            out.extend(await self._new_fills())
        return out

    def _order(self, o: dict[str, Any]) -> Order | None:
        try:
            product = self.symbols.by_product_id(o["product_id"])
        except ExchangeError:
            return None  # another product type (futures) on the same account
        try:
            filled = dec_or_zero(o.get("cumulative_quantity"))
            qty = filled + dec_or_zero(o.get("leaves_quantity"))
            otype = OrderType.MARKET if "MARKET" in str(o.get("order_type", "")).upper() else OrderType.LIMIT
            limit = dec_or_zero(o.get("limit_price"))
            return Order(client_order_id=str(o.get("client_order_id") or ""), venue_order_id=str(o["order_id"]),
                         pair=product.pair, side=side(o["order_side"]), type=otype, qty=qty,
                         status=order_status(str(o["status"]), filled), filled_qty=filled,
                         avg_price=dec(o["avg_price"]) if dec_or_zero(o.get("avg_price")) > 0 else None,
                         fee=dec_or_zero(o.get("total_fees")), fee_currency=product.market.quote,
                         limit_price=limit or None,
                         created_at=utc_from_iso(o["creation_time"]) if o.get("creation_time") else None)
        except (KeyError, TypeError) as exc:
            raise MalformedResponse(f"Coinbase user: bad order ({exc!r})") from exc

    async def _new_fills(self) -> list[Fill]:
        fills, self.cursor = await self._fills_after(self.cursor)
        fresh = []
        for fill in fills:
            if fill.fill_id not in self._seen:
                self._seen[fill.fill_id] = None
                fresh.append(fill)
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        return fresh

    async def on_tick(self) -> Sequence[Any]:
        return ()

    def on_disconnect(self) -> None:
        super().on_disconnect()
        self._filled.clear()  # the snapshot after resubscribing restates every open order

    async def resync(self) -> Sequence[Any]:
        return await self._new_fills()
