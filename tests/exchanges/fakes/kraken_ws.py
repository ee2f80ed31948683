"""The fake Kraken's WebSocket v2 endpoints: public ``ohlc``/``ticker``/``book`` and private
``executions``, with heartbeats, subscription acks and snapshots (see :mod:`.kraken`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

SNAPSHOT_CANDLES = 3


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def num(value: Any) -> float:
    """v2 sends numbers, not strings; the shortest float repr keeps them exact enough for tests."""
    return float(Decimal(value))


class KrakenWsMixin:
    # provided by FakeKraken / FakeServer
    asset_pairs: dict[str, Any]
    candles: dict[tuple[str, int], list[list[Any]]]
    heartbeat_s: float
    tokens: set[str]
    orders: dict[str, dict[str, Any]]

    def _ws_init(self) -> None:
        if not hasattr(self, "_subs"):
            self._subs: dict[web.WebSocketResponse, set[tuple[str, str, int]]] = defaultdict(set)

    def v2_symbol(self, rest_id: str) -> str:
        base, quote = self.asset_pairs[rest_id]["wsname"].split("/")
        alias = {"XBT": "BTC", "XDG": "DOGE"}
        return f"{alias.get(base, base)}/{alias.get(quote, quote)}"

    def _rest_id_for_symbol(self, symbol: str) -> str | None:
        return next((r for r in self.asset_pairs if self.v2_symbol(r) == symbol), None)

    def candle_v2(self, rest_id: str, interval: int, row: list[Any]) -> dict[str, Any]:
        return {"symbol": self.v2_symbol(rest_id), "open": num(row[1]), "high": num(row[2]), "low": num(row[3]),
                "close": num(row[4]), "vwap": num(row[5]), "trades": int(row[7]), "volume": num(row[6]),
                "interval_begin": iso(row[0]), "interval": interval, "timestamp": iso(row[0] + interval * 60)}

    def ticker_v2(self, rest_id: str) -> dict[str, Any]:
        bid, ask = self.quote(rest_id)  # type: ignore[attr-defined]
        mid = self.mid[rest_id]  # type: ignore[attr-defined]
        return {"symbol": self.v2_symbol(rest_id), "bid": num(bid), "bid_qty": 1.0, "ask": num(ask), "ask_qty": 1.0,
                "last": num(mid), "volume": 10.0, "vwap": num(mid), "low": num(mid), "high": num(mid),
                "change": 0.0, "change_pct": 0.0}

    # -- public -----------------------------------------------------------------------------------------

    async def _ws_public(self, request: web.Request) -> web.WebSocketResponse:
        self._ws_init()
        return await self.serve_websocket(request, "public", self._on_public, self._on_open)  # type: ignore[attr-defined]

    async def _on_open(self, ws: web.WebSocketResponse) -> None:
        await self.send(ws, {"channel": "status", "type": "update",  # type: ignore[attr-defined]
                             "data": [{"api_version": "v2", "connection_id": id(ws), "system": "online",
                                       "version": "2.0.0"}]})
        self.spawn(self._heartbeats(ws))  # type: ignore[attr-defined]

    async def _heartbeats(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.heartbeat_s)
            if self._subs.get(ws):
                await self.send(ws, {"channel": "heartbeat"})  # type: ignore[attr-defined]

    async def _on_public(self, ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params") or {}
        if method == "ping":
            await self.send(ws, {"method": "pong", "req_id": msg.get("req_id")})  # type: ignore[attr-defined]
            return
        channel = params.get("channel")
        interval = int(params.get("interval", 1))
        if method == "unsubscribe":
            for symbol in params.get("symbol", []):
                rest_id = self._rest_id_for_symbol(symbol)
                self._subs[ws].discard((channel, rest_id or "", interval if channel == "ohlc" else 0))
                await self.send(ws, {"method": "unsubscribe", "success": rest_id is not None,  # type: ignore[attr-defined]
                                     "req_id": msg.get("req_id"), "result": {"channel": channel, "symbol": symbol}})
            return
        if method != "subscribe":
            return
        for symbol in params.get("symbol", []):
            rest_id = self._rest_id_for_symbol(symbol)
            if rest_id is None:
                await self.send(ws, {"method": "subscribe", "success": False,  # type: ignore[attr-defined]
                                     "error": f"Currency pair not supported {symbol}", "symbol": symbol,
                                     "req_id": msg.get("req_id")})
                continue
            self._subs[ws].add((channel, rest_id, interval if channel == "ohlc" else 0))
            await self.send(ws, {"method": "subscribe", "success": True, "req_id": msg.get("req_id"),  # type: ignore[attr-defined]
                                 "result": {"channel": channel, "symbol": symbol, "snapshot": True}})
            if channel == "ohlc":
                rows = self.candles.get((rest_id, interval), [])[-SNAPSHOT_CANDLES:]
                await self.send(ws, {"channel": "ohlc", "type": "snapshot",  # type: ignore[attr-defined]
                                     "data": [self.candle_v2(rest_id, interval, r) for r in rows]})
            elif channel == "ticker" and rest_id in self.mid:  # type: ignore[attr-defined]
                await self.send(ws, {"channel": "ticker", "type": "snapshot", "data": [self.ticker_v2(rest_id)]})  # type: ignore[attr-defined]
            elif channel == "book" and rest_id in self.mid:  # type: ignore[attr-defined]
                bid, ask = self.quote(rest_id)  # type: ignore[attr-defined]
                await self.send(ws, {"channel": "book", "type": "snapshot", "data": [{  # type: ignore[attr-defined]
                    "symbol": symbol, "bids": [{"price": num(bid), "qty": 1.0}],
                    "asks": [{"price": num(ask), "qty": 1.0}],
                    "checksum": 0}]})

    async def _publish(self, channel: str, rest_id: str, interval: int, payload: Mapping[str, Any]) -> None:
        for ws, subs in list(getattr(self, "_subs", {}).items()):
            if (channel, rest_id, interval) in subs:
                await self.send(ws, payload)  # type: ignore[attr-defined]

    async def push_candle(self, pair: str, interval_min: int, row: list[Any]) -> None:
        """Record a candle row and stream it as an ``ohlc`` update to subscribers."""
        self.add_candles(pair, interval_min, [row])  # type: ignore[attr-defined]
        rest_id = self.rest_id(pair)  # type: ignore[attr-defined]
        await self._publish("ohlc", rest_id, interval_min,
                            {"channel": "ohlc", "type": "update", "data": [self.candle_v2(rest_id, interval_min, row)]})

    async def push_ticker(self, pair: str) -> None:
        rest_id = self.rest_id(pair)  # type: ignore[attr-defined]
        await self._publish("ticker", rest_id, 0,
                            {"channel": "ticker", "type": "update", "data": [self.ticker_v2(rest_id)]})

    async def push_raw(self, text: str) -> None:
        """Send arbitrary text (e.g. malformed JSON) to every public connection."""
        await self.broadcast("public", text)  # type: ignore[attr-defined]

    # -- private ---------------------------------------------------------------------------------------

    async def _ws_private(self, request: web.Request) -> web.WebSocketResponse:
        self._ws_init()
        return await self.serve_websocket(request, "private", self._on_private, self._on_open)  # type: ignore[attr-defined]

    async def _on_private(self, ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
        params = msg.get("params") or {}
        if msg.get("method") != "subscribe" or params.get("channel") != "executions":
            return
        if params.get("token") not in self.tokens:
            await self.send(ws, {"method": "subscribe", "success": False,  # type: ignore[attr-defined]
                                 "error": "EAccount:Invalid token", "req_id": msg.get("req_id")})
            return
        self._subs[ws].add(("executions", "", 0))
        await self.send(ws, {"method": "subscribe", "success": True, "req_id": msg.get("req_id"),  # type: ignore[attr-defined]
                             "result": {"channel": "executions", "snap_orders": True, "snap_trades": False}})
        snapshot = [self._report(t, o, o["status"] if o["status"] != "open" else "new")
                    for t, o in self.orders.items() if o["status"] == "open"]
        await self.send(ws, {"channel": "executions", "type": "snapshot", "data": snapshot, "sequence": 1})  # type: ignore[attr-defined]

    def _report(self, txid: str, order: Mapping[str, Any], exec_type: str) -> dict[str, Any]:
        filled = Decimal(order["vol_exec"])
        status = {"open": "partially_filled" if filled else "new", "closed": "filled",
                  "canceled": "canceled", "expired": "expired"}[order["status"]]
        report = {"order_id": txid, "exec_type": exec_type, "exec_id": f"E{txid}{exec_type}",
                  "symbol": self.v2_symbol(order["_pair"]), "side": order["descr"]["type"],
                  "order_type": order["descr"]["ordertype"], "order_qty": num(order["vol"]),
                  "order_status": status, "cum_qty": num(filled), "cum_cost": num(order["cost"]),
                  "avg_price": num(order["price"]), "timestamp": iso(order["opentm"]), "order_userref": 0}
        if order["descr"]["ordertype"] == "limit":
            report["limit_price"] = num(order["descr"]["price"])
        if order.get("cl_ord_id"):
            report["cl_ord_id"] = order["cl_ord_id"]
        return report

    async def _exec_report(self, txid: str, order: Mapping[str, Any], exec_type: str) -> None:
        await self._publish("executions", "", 0, {"channel": "executions", "type": "update",
                                                   "data": [self._report(txid, order, exec_type)]})

    async def _trade_report(self, txid: str, order: Mapping[str, Any], trade_id: str, trade: Mapping[str, Any]) -> None:
        report = self._report(txid, order, "trade")
        quote = self.v2_symbol(order["_pair"]).split("/")[1]
        report.update({"exec_id": trade_id, "trade_id": trade["trade_id"], "last_qty": num(trade["vol"]),
                       "last_price": num(trade["price"]), "cost": num(trade["cost"]),
                       "liquidity_ind": "m" if trade["maker"] else "t",
                       "fees": [{"asset": quote, "qty": num(trade["fee"])}], "timestamp": iso(trade["time"])})
        await self._publish("executions", "", 0, {"channel": "executions", "type": "update", "data": [report]})
