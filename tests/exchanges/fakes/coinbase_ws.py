"""The fake Coinbase's WebSocket endpoints: ``heartbeats``, ``ticker``, ``candles`` on the market
endpoint and ``user`` (JWT required) on the user endpoint, with per-connection ``sequence_num``."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.exchanges.fakes.coinbase_orders import iso

SNAPSHOT_CANDLES = 3


class CoinbaseWsMixin:
    heartbeat_s: float
    candles: dict[tuple[str, int], dict[int, dict[str, str]]]
    orders: dict[str, dict[str, Any]]
    mid: dict[str, Decimal]

    def _cb_state(self) -> None:
        if not hasattr(self, "_seq"):
            self._seq: dict[web.WebSocketResponse, int] = {}
            self._chans: dict[web.WebSocketResponse, set[tuple[str, str]]] = defaultdict(set)

    async def _emit(self, ws: web.WebSocketResponse, channel: str, events: list[Any]) -> None:
        self._cb_state()
        seq = self._seq.get(ws, -1) + 1
        self._seq[ws] = seq
        await self.send(ws, {"channel": channel, "client_id": "", "timestamp": iso(time.time()),  # type: ignore[attr-defined]
                             "sequence_num": seq, "events": events})

    def skip_sequence(self, count: int = 1) -> None:
        """Pretend messages were lost: the next message on every connection jumps ahead."""
        self._cb_state()
        for ws in self._seq:
            self._seq[ws] += count

    async def _ws_market(self, request: web.Request) -> web.WebSocketResponse:
        self._cb_state()
        return await self.serve_websocket(request, "market", self._on_sub)  # type: ignore[attr-defined]

    async def _ws_user(self, request: web.Request) -> web.WebSocketResponse:
        self._cb_state()
        return await self.serve_websocket(request, "user", self._on_sub)  # type: ignore[attr-defined]

    async def _heartbeats(self, ws: web.WebSocketResponse) -> None:
        counter = 0
        while not ws.closed:
            await asyncio.sleep(self.heartbeat_s)
            counter += 1
            await self._emit(ws, "heartbeats", [{"current_time": iso(time.time()), "heartbeat_counter": counter}])

    def candle_row(self, pid: str, row: dict[str, str]) -> dict[str, str]:
        return {**row, "product_id": pid}

    def ticker_event(self, pid: str) -> dict[str, Any]:
        bid, ask = self.quote(pid)  # type: ignore[attr-defined]
        price = self.mid[pid]
        return {"type": "ticker", "product_id": pid, "price": f"{price:f}", "volume_24_h": "100",
                "low_24_h": f"{price:f}", "high_24_h": f"{price:f}", "low_52_w": f"{price:f}",
                "high_52_w": f"{price:f}", "price_percent_chg_24_h": "0", "best_bid": f"{bid:f}",
                "best_bid_quantity": "1", "best_ask": f"{ask:f}", "best_ask_quantity": "1"}

    def user_order(self, o: dict[str, Any]) -> dict[str, Any]:
        cfg = next(iter(o["order_configuration"].values()))
        filled = Decimal(o["filled_size"])
        return {"order_id": o["order_id"], "client_order_id": o["client_order_id"],
                "cumulative_quantity": f"{filled:f}", "leaves_quantity": f"{Decimal(cfg['base_size']) - filled:f}",
                "avg_price": o["average_filled_price"], "total_fees": o["total_fees"], "status": o["status"],
                "product_id": o["product_id"], "creation_time": o["created_time"], "order_side": o["side"],
                "order_type": o["order_type"], "limit_price": cfg.get("limit_price", "")}

    async def _on_sub(self, ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
        if msg.get("type") == "unsubscribe":
            for pid in msg.get("product_ids") or []:
                self._chans[ws].discard((msg.get("channel", ""), pid))
            await self._emit(ws, "subscriptions", [{"subscriptions": {}}])
            return
        if msg.get("type") != "subscribe":
            return
        channel = msg.get("channel", "")
        token = msg.get("jwt")
        if (channel == "user" or token) and (not token or self.verify_jwt(token, None) is not None):  # type: ignore[attr-defined]
            await self.send(ws, {"type": "error", "message": "authentication failure"})  # type: ignore[attr-defined]
            return
        ids = msg.get("product_ids") or []
        for pid in ids or [""]:
            self._chans[ws].add((channel, pid))
        await self._emit(ws, "subscriptions", [{"subscriptions": {channel: ids or [channel]}}])
        if channel == "heartbeats":
            self.spawn(self._heartbeats(ws))  # type: ignore[attr-defined]
        elif channel == "candles":
            rows = []
            for pid in ids:
                series = self.candles.get((pid, 300), {})
                rows += [self.candle_row(pid, series[t]) for t in sorted(series)[-SNAPSHOT_CANDLES:]]
            await self._emit(ws, "candles", [{"type": "snapshot", "candles": rows}])
        elif channel == "ticker":
            await self._emit(ws, "ticker", [{"type": "snapshot",
                                             "tickers": [self.ticker_event(p) for p in ids if p in self.mid]}])
        elif channel == "user":
            open_orders = [self.user_order(o) for o in self.orders.values() if o["status"] == "OPEN"]
            await self._emit(ws, "user", [{"type": "snapshot", "orders": open_orders}])

    async def _publish(self, channel: str, pid: str, events: list[Any]) -> None:
        self._cb_state()
        for ws, chans in list(self._chans.items()):
            if (channel, pid) in chans and not ws.closed:
                await self._emit(ws, channel, events)

    async def push_candle(self, pair: str, timeframe_s: int, row: dict[str, str]) -> None:
        self.add_candles(pair, timeframe_s, [row])  # type: ignore[attr-defined]
        pid = self.product_id(pair)  # type: ignore[attr-defined]
        if timeframe_s == 300:
            await self._publish("candles", pid, [{"type": "update", "candles": [self.candle_row(pid, row)]}])

    async def push_ticker(self, pair: str) -> None:
        pid = self.product_id(pair)  # type: ignore[attr-defined]
        await self._publish("ticker", pid, [{"type": "update", "tickers": [self.ticker_event(pid)]}])

    async def push_raw(self, text: str) -> None:
        await self.broadcast("market", text)  # type: ignore[attr-defined]

    async def _user_update(self, order: dict[str, Any]) -> None:
        await self._publish("user", "", [{"type": "update", "orders": [self.user_order(order)]}])
