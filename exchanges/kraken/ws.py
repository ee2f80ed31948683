"""Kraken WebSocket v2: message parsing and the sessions :func:`exchanges._stream.run_feed` drives.

Public (``wss://ws.kraken.com/v2``): ``ohlc`` and ``ticker`` for :meth:`market_events`, ``book``
for :meth:`book_events`. Private (``wss://ws-auth.kraken.com/v2``): ``executions``, with a token
from ``GetWebSocketsToken`` fetched on every (re)connect. Heartbeats arrive every second on a
subscribed connection; the runner treats silence as a dead link.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from websockets.asyncio.client import ClientConnection

from exchanges._http import dec, dec_or_zero, loads, utc_from_iso
from exchanges._stream import CandleCloser, send_quietly
from exchanges.base import Candle, Fill, Order, OrderBook, OrderType, Side, Ticker
from exchanges.clock import Clock
from exchanges.errors import ExchangeError, MalformedResponse, UnknownPair
from exchanges.kraken.parse import average_price, order_status
from exchanges.kraken.symbols import KrakenPair

log = logging.getLogger(__name__)
_req_ids = count(1)


class KrakenWsParser:
    """Market-data messages -> :class:`Candle` (running) and :class:`Ticker`.

    The hot path of the feed: one ``json.loads`` with exact decimals, a dict dispatch, and
    memoised timestamps (a candle's ``interval_begin`` repeats on every update of that candle).
    """

    def __init__(self, pair_by_symbol: Mapping[str, str], timeframe_s: int, clock: Clock) -> None:
        self.pair_by_symbol = dict(pair_by_symbol)
        self.timeframe_s = timeframe_s
        self.clock = clock
        self._ts_cache: dict[str, datetime] = {}

    def _ts(self, text: str) -> datetime:
        cached = self._ts_cache.get(text)
        if cached is None:
            if len(self._ts_cache) > 4096:
                self._ts_cache.clear()
            cached = self._ts_cache[text] = utc_from_iso(text)
        return cached

    def parse(self, raw: str | bytes) -> list[Candle | Ticker]:
        return self.parse_message(loads(raw, what="Kraken WebSocket message"))

    def parse_message(self, msg: Any) -> list[Candle | Ticker]:
        if not isinstance(msg, dict):
            raise MalformedResponse("Kraken WebSocket: message is not an object")
        channel = msg.get("channel")
        if channel == "ohlc":
            return self._candles(msg.get("data"))
        if channel == "ticker":
            return self._tickers(msg.get("data"))
        return []

    def _pair(self, symbol: Any) -> str:
        try:
            return self.pair_by_symbol[symbol]
        except KeyError:
            raise MalformedResponse(f"Kraken WebSocket: unexpected symbol {symbol!r}") from None

    def _candles(self, data: Any) -> list[Candle | Ticker]:
        out: list[Candle | Ticker] = []
        tf, minutes = self.timeframe_s, self.timeframe_s // 60
        try:
            for c in data:
                if c.get("interval", minutes) != minutes:
                    continue
                out.append(Candle(self._pair(c["symbol"]), tf, self._ts(c["interval_begin"]), _num(c["open"]),
                                  _num(c["high"]), _num(c["low"]), _num(c["close"]), _num(c["volume"])))
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedResponse(f"Kraken ohlc: bad entry ({exc!r})") from exc
        return out

    def _tickers(self, data: Any) -> list[Candle | Ticker]:
        out: list[Candle | Ticker] = []
        try:
            for t in data:
                stamp = t.get("timestamp")
                ts = self._ts(stamp) if stamp else self.clock.now()
                out.append(Ticker(self._pair(t["symbol"]), _num(t["bid"]), _num(t["ask"]), _num(t["last"]), ts))
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedResponse(f"Kraken ticker: bad entry ({exc!r})") from exc
        return out


def _num(value: Any) -> Decimal:
    """The hot-path form of :func:`dec`: JSON floats already arrive as ``Decimal``."""
    return value if value.__class__ is Decimal else dec(value)


def subscribe_message(channel: str, symbols: Sequence[str] | None = None, **params: Any) -> str:
    body: dict[str, Any] = {"channel": channel, **params}
    if symbols is not None:
        body["symbol"] = list(symbols)
    return json.dumps({"method": "subscribe", "params": body, "req_id": next(_req_ids)})


def check_ack(msg: Mapping[str, Any]) -> None:
    """A refused subscription ends the stream: retrying cannot make the pair exist."""
    if msg.get("method") == "subscribe" and msg.get("success") is False:
        error = str(msg.get("error", "subscription refused"))
        if "symbol" in error.lower() or "pair" in error.lower():
            raise UnknownPair(f"Kraken WebSocket: {error}")
        raise ExchangeError(f"Kraken WebSocket: {error}")


CandleSource = Callable[[str, datetime], Awaitable[list[Candle]]]


def unsubscribe_message(channel: str, symbols: Sequence[str], **params: Any) -> str:
    return json.dumps({"method": "unsubscribe", "params": {"channel": channel, "symbol": list(symbols), **params},
                       "req_id": next(_req_ids)})


class MarketSession:
    """``ohlc`` + ``ticker`` on one public connection; REST ``OHLC`` fills gaps after reconnects.

    Pairs change on the open connection (:class:`~exchanges._stream.PairSession`): ``add`` subscribes
    both channels for the new symbol, ``remove`` unsubscribes them, and a reconnect subscribes the set as
    it is then. A subscription refused for an added pair drops that pair (logged) instead of ending the
    stream of the others; one refused at start still ends it, as before. Messages of a removed pair still
    in flight are dropped.
    """

    def __init__(self, ws_url: str, pairs: Sequence[KrakenPair], timeframe_s: int, clock: Clock,
                 rest_candles: CandleSource, close_grace_s: float = 2.0,
                 resolve: Callable[[str], Awaitable[KrakenPair]] | None = None) -> None:
        self.name = "kraken:market"
        self._url = ws_url
        self.pairs = list(pairs)
        self.timeframe_s = timeframe_s
        names = {p.wsname: p.pair for p in pairs} | {p.ws_symbol: p.pair for p in pairs}  # v2 names win
        self.parser = KrakenWsParser(names, timeframe_s, clock)
        self.closer = CandleCloser(timeframe_s, clock, close_grace_s)
        self._rest_candles = rest_candles
        self._resolve = resolve
        self._ws: ClientConnection | None = None
        self._added_reqs: dict[int, str] = {}  # req_id of a runtime subscribe -> its pair

    async def url(self) -> str:
        return self._url

    def _subscribes(self, symbols: list[str]) -> tuple[str, str]:
        return (subscribe_message("ohlc", symbols, interval=self.timeframe_s // 60, snapshot=True),
                subscribe_message("ticker", symbols))

    async def on_open(self, ws: ClientConnection) -> None:
        self._ws = ws
        for message in self._subscribes([p.ws_symbol for p in self.pairs]):
            await ws.send(message)

    async def add(self, pair: str) -> None:
        """Stream ``pair`` from now on (see the class docstring); raises UnknownPair for a symbol Kraken
        does not list (nothing changed)."""
        if any(p.pair == pair for p in self.pairs):
            return
        if self._resolve is None:
            raise ExchangeError(f"{self.name}: this stream was built without symbols; cannot add {pair}")
        found = await self._resolve(pair)
        self.parser.pair_by_symbol |= {found.wsname: found.pair, found.ws_symbol: found.pair}
        self.pairs.append(found)
        messages = self._subscribes([found.ws_symbol])
        for message in messages:
            self._added_reqs[json.loads(message)["req_id"]] = pair
        await send_quietly(self._ws, self.name, *messages)

    async def remove(self, pair: str) -> None:
        gone = [p for p in self.pairs if p.pair == pair]
        if not gone:
            return
        self.pairs = [p for p in self.pairs if p.pair != pair]
        self.closer.forget(pair)
        symbols = [gone[0].ws_symbol]
        await send_quietly(self._ws, self.name, unsubscribe_message("ohlc", symbols, interval=self.timeframe_s // 60),
                           unsubscribe_message("ticker", symbols))

    async def on_message(self, raw: str | bytes) -> Sequence[Any]:
        msg = loads(raw, what="Kraken WebSocket message")
        if isinstance(msg, dict) and "method" in msg:
            req_id = msg.get("req_id")
            added = self._added_reqs.pop(req_id, None) if isinstance(req_id, int) else None
            if added is not None and msg.get("success") is False:
                log.warning("%s: %s refused (%s); it is not streamed", self.name, added, msg.get("error"))
                await self.remove(added)
                return ()
            check_ack(msg)
            return ()
        events: list[Any] = []
        streamed = {p.pair for p in self.pairs}
        for item in self.parser.parse_message(msg):
            if item.pair not in streamed:
                continue  # unsubscribed; its last messages were in flight
            if isinstance(item, Candle):
                events.extend(self.closer.update(item))
            else:
                events.append(item)
        return events

    async def on_tick(self) -> Sequence[Any]:
        return self.closer.tick()

    def on_disconnect(self) -> None:
        self._ws = None
        self._added_reqs.clear()  # the next connection's subscribe answers for the whole set
        self.closer.drop_running()

    async def resync(self) -> Sequence[Any]:
        out: list[Any] = []
        for p in list(self.pairs):
            since = self.closer.last_closed(p.pair)
            if since is not None:
                out.extend(self.closer.update_many(await self._rest_candles(p.pair, since)))
        return out


class BookSession:
    """``book`` channel: a local book per pair from snapshot + updates, emitted after each change."""

    def __init__(self, ws_url: str, pairs: Sequence[KrakenPair], depth: int, clock: Clock) -> None:
        self.name = "kraken:book"
        self._url = ws_url
        self.pairs = list(pairs)
        self.depth = depth
        self.clock = clock
        self._pair = {p.wsname: p.pair for p in pairs} | {p.ws_symbol: p.pair for p in pairs}
        self._books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}

    async def url(self) -> str:
        return self._url

    async def on_open(self, ws: ClientConnection) -> None:
        valid = min((d for d in (10, 25, 100, 500, 1000) if d >= self.depth), default=1000)
        await ws.send(subscribe_message("book", [p.ws_symbol for p in self.pairs], depth=valid, snapshot=True))

    async def on_message(self, raw: str | bytes) -> Sequence[Any]:
        msg = loads(raw, what="Kraken WebSocket message")
        if not isinstance(msg, dict):
            raise MalformedResponse("Kraken WebSocket: message is not an object")
        check_ack(msg)
        if msg.get("channel") != "book":
            return ()
        out: list[OrderBook] = []
        try:
            for entry in msg["data"]:
                pair = self._pair[entry["symbol"]]
                if msg.get("type") == "snapshot" or pair not in self._books:
                    self._books[pair] = ({}, {})
                bids, asks = self._books[pair]
                _apply(bids, entry.get("bids", ()))
                _apply(asks, entry.get("asks", ()))
                stamp = entry.get("timestamp")
                out.append(OrderBook(
                    pair=pair,
                    bids=tuple(sorted(bids.items(), reverse=True)[: self.depth]),
                    asks=tuple(sorted(asks.items())[: self.depth]),
                    ts=utc_from_iso(stamp) if stamp else self.clock.now(),
                ))
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedResponse(f"Kraken book: bad entry ({exc!r})") from exc
        return out

    async def on_tick(self) -> Sequence[Any]:
        return ()

    def on_disconnect(self) -> None:
        self._books.clear()

    async def resync(self) -> Sequence[Any]:
        return ()  # the snapshot sent on resubscribe is the resync


def _apply(side: dict[Decimal, Decimal], levels: Iterable[Mapping[str, Any]]) -> None:
    for level in levels:
        price, qty = dec(level["price"]), dec(level["qty"])
        if qty == 0:
            side.pop(price, None)
        else:
            side[price] = qty


class ExecutionsSession:
    """Private ``executions``: fills (``exec_type == "trade"``) and order updates.

    Updates carry only changed fields, so order state is merged per ``order_id`` before an
    :class:`Order` is built. After a reconnect, fills missed while away come from REST
    (``TradesHistory`` after the last fill seen); fills are de-duplicated by id.
    """

    def __init__(self, ws_url: str, symbols_by_ws: Mapping[str, KrakenPair], clock: Clock,
                 token: Callable[[], Awaitable[str]],
                 fills_after: Callable[[str | None], Awaitable[list[Fill]]],
                 client_id: Callable[[str], str | None], asset: Callable[[str], str]) -> None:
        self.name = "kraken:executions"
        self._url = ws_url
        self._symbols = dict(symbols_by_ws)
        self.clock = clock
        self._token = token
        self._fills_after = fills_after
        self._client_id = client_id
        self._asset = asset
        self._orders: dict[str, dict[str, Any]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_fill_id: str | None = None

    async def url(self) -> str:
        return self._url

    async def on_open(self, ws: ClientConnection) -> None:
        token = await self._token()
        await ws.send(subscribe_message("executions", None, token=token, snap_orders=True, snap_trades=False))

    async def on_message(self, raw: str | bytes) -> Sequence[Any]:
        msg = loads(raw, what="Kraken WebSocket message")
        if not isinstance(msg, dict):
            raise MalformedResponse("Kraken WebSocket: message is not an object")
        check_ack(msg)
        if msg.get("channel") != "executions":
            return ()
        out: list[Any] = []
        for report in msg.get("data") or ():
            if not isinstance(report, dict) or "order_id" not in report:
                raise MalformedResponse("Kraken executions: report without order_id")
            state = self._orders.setdefault(report["order_id"], {})
            state.update(report)
            try:
                if report.get("exec_type") == "trade":
                    fill = self._fill(state, report)
                    if fill is not None:
                        state["_fee_total"] = state.get("_fee_total", Decimal(0)) + fill.fee
                        out.append(fill)
                order = self._order(state)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise MalformedResponse(f"Kraken executions: bad report ({exc!r})") from exc
            if order is not None:
                out.append(order)
            if order is not None and order.status.is_final:
                self._orders.pop(report["order_id"], None)
        return out

    def _fill(self, state: Mapping[str, Any], report: Mapping[str, Any]) -> Fill | None:
        fill_id = str(report.get("exec_id", ""))
        if not fill_id or not self._remember(fill_id):
            return None
        pair = self._symbols.get(state.get("symbol", ""))
        if pair is None:
            raise MalformedResponse(f"Kraken executions: trade {fill_id} for an unknown symbol")
        qty = dec_or_zero(report.get("last_qty"))
        price = dec_or_zero(report.get("last_price"))
        cost = dec_or_zero(report.get("cost"))
        if price == 0 and cost > 0 and qty > 0:
            price = cost / qty
        if qty == 0 and cost > 0 and price > 0:
            qty = cost / price
        fees = report.get("fees") or []
        fee = sum((dec(f.get("qty", 0)) for f in fees), Decimal(0))
        fee_ccy = self._asset(str(fees[0].get("asset"))) if fees else pair.market.quote
        if state.get("side") not in ("buy", "sell"):
            raise MalformedResponse(f"Kraken executions: trade {fill_id} without a side")
        self.last_fill_id = fill_id
        cid = state.get("cl_ord_id") or self._client_id(state["order_id"]) or ""
        return Fill(fill_id=fill_id, client_order_id=str(cid),
                    venue_order_id=state["order_id"], pair=pair.pair, side=Side(state["side"]),
                    qty=qty, price=price, fee=fee, fee_currency=fee_ccy,
                    ts=utc_from_iso(report["timestamp"]) if report.get("timestamp") else self.clock.now(),
                    liquidity="maker" if report.get("liquidity_ind") == "m" else "taker")

    def _order(self, s: Mapping[str, Any]) -> Order | None:
        pair = self._symbols.get(s.get("symbol", ""))
        if pair is None or "side" not in s or "order_qty" not in s or "order_status" not in s:
            return None
        filled = dec_or_zero(s.get("cum_qty"))
        status = {"pending_new": "pending", "new": "open", "partially_filled": "open", "filled": "closed",
                  "canceled": "canceled", "expired": "expired"}.get(s["order_status"], "open")
        otype = OrderType.MARKET if s.get("order_type") == "market" else OrderType.LIMIT
        return Order(client_order_id=str(s.get("cl_ord_id") or self._client_id(s["order_id"]) or ""),
                     venue_order_id=s["order_id"], pair=pair.pair, side=Side(s["side"]), type=otype,
                     qty=dec(s["order_qty"]), status=order_status(status, filled), filled_qty=filled,
                     avg_price=average_price(dec_or_zero(s.get("avg_price")), dec_or_zero(s.get("cum_cost")), filled),
                     fee=s.get("_fee_total", Decimal(0)),
                     fee_currency=pair.market.quote,
                     limit_price=dec(s["limit_price"]) if otype is OrderType.LIMIT and s.get("limit_price") else None)

    def _remember(self, fill_id: str) -> bool:
        if fill_id in self._seen:
            return False
        self._seen[fill_id] = None
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        return True

    async def on_tick(self) -> Sequence[Any]:
        return ()

    def on_disconnect(self) -> None:
        self._orders.clear()

    async def resync(self) -> Sequence[Any]:
        if self.last_fill_id is None:
            return ()  # nothing seen yet, so nothing to continue from; REST fills_since covers it
        missed = [f for f in await self._fills_after(self.last_fill_id) if self._remember(f.fill_id)]
        if missed:
            self.last_fill_id = missed[-1].fill_id
        return missed
