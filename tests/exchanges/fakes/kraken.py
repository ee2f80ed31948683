"""A fake Kraken spot venue: REST (public + signed private) and WebSocket v2 on loopback.

Replies use the shapes of the recorded Kraken payloads in ``tests/exchanges/fixtures``. Private
calls are verified like Kraken does (key, ``API-Sign``, strictly increasing nonce) and refused with
Kraken's own error strings. Orders live in a small matching model: market orders fill at the ask
(buy) or bid (sell); limit orders fill when the price crosses them, optionally in parts
(``max_fill_qty``), with maker/taker fees charged in the quote currency.

    async with FakeKraken() as fake:
        venue = KrakenExchange(fake.api_key, fake.api_secret, rest_url=fake.rest_url,
                               ws_url=fake.ws_url, ws_auth_url=fake.ws_auth_url)
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.kraken.auth import sign
from tests.exchanges.fakes._server import FakeServer, dumps
from tests.exchanges.fakes.kraken_private import KrakenPrivateMixin, KrakenRefusal, s8
from tests.exchanges.fakes.kraken_ws import KrakenWsMixin

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ccxt"
_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}


class FakeKraken(KrakenPrivateMixin, KrakenWsMixin, FakeServer):
    def __init__(self, *, asset_pairs: Mapping[str, Any] | None = None, heartbeat_s: float = 0.2,
                 key_can_withdraw: bool = False) -> None:
        self.api_key = "fake-kraken-key-" + secrets.token_hex(4)
        self.api_secret = base64.b64encode(secrets.token_bytes(64)).decode()
        if asset_pairs is None:
            asset_pairs = json.loads((FIXTURES / "markets" / "kraken_asset_pairs.json").read_text())["result"]
        self.asset_pairs: dict[str, Any] = dict(asset_pairs)
        self.pair_ids: dict[str, str] = {}      # BTC/USD -> XXBTZUSD
        self.asset_codes: dict[str, str] = {}   # BTC -> XXBT
        for rest_id, info in self.asset_pairs.items():
            base, quote = (_ALIASES.get(x, x) for x in info["wsname"].split("/"))
            self.pair_ids[f"{base}/{quote}"] = rest_id
            self.asset_codes[base], self.asset_codes[quote] = info["base"], info["quote"]
        self.heartbeat_s = heartbeat_s
        self.key_can_withdraw = key_can_withdraw
        self.server_time_offset_s = 0.0
        self.balances: dict[str, Decimal] = {}
        self.mid: dict[str, Decimal] = {}
        self.spread: dict[str, Decimal] = {}
        self.max_fill_qty: Decimal | None = None
        self.taker_fee, self.maker_fee = Decimal("0.0026"), Decimal("0.0016")
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self.candles: dict[tuple[str, int], list[list[Any]]] = {}
        self.tokens: set[str] = set()
        self.last_nonce = 0
        super().__init__()

    def _routes(self) -> None:
        self.app.router.add_get("/0/public/{method}", self._public)
        self.app.router.add_post("/0/private/{method}", self._private)
        self.app.router.add_get("/v2", self._ws_public)
        self.app.router.add_get("/v2-auth", self._ws_private)

    @property
    def rest_url(self) -> str:
        return self.http_url

    @property
    def ws_url(self) -> str:
        return f"{self.ws_base}/v2"

    @property
    def ws_auth_url(self) -> str:
        return f"{self.ws_base}/v2-auth"

    # -- test controls ---------------------------------------------------------------------------

    def rest_id(self, pair: str) -> str:
        return self.pair_ids.get(pair, pair)

    def set_balance(self, currency: str, amount: Decimal) -> None:
        self.balances[self.asset_codes.get(currency, currency)] = Decimal(amount)

    async def set_price(self, pair: str, mid: Decimal, spread: Decimal = Decimal(0)) -> None:
        """Move the market; resting limit orders the new price crosses fill at their limit (maker)."""
        rest_id = self.rest_id(pair)
        self.mid[rest_id], self.spread[rest_id] = Decimal(mid), Decimal(spread)
        for order in list(self.orders.values()):
            if order["_pair"] == rest_id and order["status"] == "open" and order["descr"]["ordertype"] == "limit":
                limit = Decimal(order["descr"]["price"])
                bid, ask = self.quote(rest_id)
                side = order["descr"]["type"]
                if (side == "buy" and ask <= limit) or (side == "sell" and bid >= limit):
                    await self._execute(order, self._fill_qty(order), limit, maker=True)

    def quote(self, rest_id: str) -> tuple[Decimal, Decimal]:
        mid = self.mid.get(rest_id)
        if mid is None:
            raise KrakenRefusal("EService:Unavailable")
        half = self.spread.get(rest_id, Decimal(0)) / 2
        return mid - half, mid + half

    def add_candles(self, pair: str, interval_min: int, rows: list[list[Any]]) -> None:
        """History only (what happened while nobody was listening). Rows are Kraken OHLC rows."""
        series = self.candles.setdefault((self.rest_id(pair), interval_min), [])
        for row in rows:
            series[:] = [r for r in series if r[0] != row[0]]
            series.append(row)
        series.sort(key=lambda r: r[0])

    async def fill(self, client_order_id: str, qty: Decimal, price: Decimal | None = None) -> None:
        """Fill part (or the rest) of an open order now, as the taker side of someone else's trade."""
        order = next(o for o in self.orders.values() if o.get("cl_ord_id") == client_order_id)
        await self._execute(order, Decimal(qty), price or Decimal(order["descr"]["price"]), maker=True)

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o.get("cl_ord_id") == client_order_id), None)

    # -- REST plumbing ---------------------------------------------------------------------------------

    async def _respond(self, method: str, process: Any) -> web.Response:
        fault = self.fault_for(method)
        if fault is not None:
            if fault.kind == "http429":
                return web.Response(status=429, text="Too Many Requests",
                                    headers={"Retry-After": str(fault.retry_after)})
            if fault.kind == "http500":
                return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                    content_type="text/html")
            if fault.kind == "rate_limit":
                return self._json({"error": ["EAPI:Rate limit exceeded"]})
            if fault.kind == "error":
                return self._json({"error": [fault.error]})
            if fault.kind == "malformed":
                return web.Response(text='{"error":[],"result":{"XXBTZ', content_type="application/json")
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s)
                return self._json({"error": ["EService:Timeout"]})
        try:
            payload: dict[str, Any] = {"error": [], "result": await process()}
        except KrakenRefusal as exc:
            payload = {"error": [str(exc)]}
        if fault is not None and fault.kind == "accept_then_timeout":
            await asyncio.sleep(fault.delay_s)
        return self._json(payload)

    @staticmethod
    def _json(payload: Any) -> web.Response:
        return web.Response(text=dumps(payload), content_type="application/json")

    async def _public(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = dict(request.query)
        self.calls.append((method, params))
        handler = getattr(self, f"_pub_{method}", None)
        if handler is None:
            return self._json({"error": ["EGeneral:Unknown method"]})
        return await self._respond(method, lambda: handler(params))

    async def _private(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.text()
        params = dict(parse_qsl(body, keep_blank_values=True))
        self.calls.append((method, params))
        refusal = self._check_auth(request, method, body, params)
        if refusal:
            return self._json({"error": [refusal]})
        handler = getattr(self, f"_priv_{method}", None)
        if handler is None:
            return self._json({"error": ["EGeneral:Unknown method"]})
        return await self._respond(method, lambda: handler(params))

    def _check_auth(self, request: web.Request, method: str, body: str, params: dict[str, str]) -> str | None:
        if request.headers.get("API-Key") != self.api_key:
            return "EAPI:Invalid key"
        try:
            nonce = int(params["nonce"])
        except (KeyError, ValueError):
            return "EAPI:Invalid nonce"
        expected = sign(self.api_secret, f"/0/private/{method}", params["nonce"], body)
        if request.headers.get("API-Sign") != expected:
            return "EAPI:Invalid signature"
        if nonce <= self.last_nonce:
            return "EAPI:Invalid nonce"
        self.last_nonce = nonce
        return None

    def _pair_param(self, params: Mapping[str, str]) -> str:
        name = params.get("pair", "")
        if name in self.asset_pairs:
            return name
        for rest_id, info in self.asset_pairs.items():
            if name in (info["altname"], info["wsname"]):
                return rest_id
        raise KrakenRefusal("EQuery:Unknown asset pair")

    # -- public ------------------------------------------------------------------------------------------

    async def _pub_Time(self, params: Mapping[str, str]) -> Any:
        now = time.time() + self.server_time_offset_s
        return {"unixtime": int(now), "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(now))}

    async def _pub_AssetPairs(self, params: Mapping[str, str]) -> Any:
        return self.asset_pairs

    async def _pub_Assets(self, params: Mapping[str, str]) -> Any:
        """Kraken's ``Assets`` shape for every asset the pairs use (ccxt's ``load_markets`` asks for it;
        the native adapter does not). Fiat (``Z...`` codes and USDT) has 4 decimals, crypto 10."""
        out: dict[str, Any] = {}
        for info in self.asset_pairs.values():
            for code, alt in zip((info["base"], info["quote"]), info["wsname"].split("/"), strict=True):
                fiat = code.startswith("Z") or code in ("USDT", "USDC")
                out[code] = {"aclass": "currency", "altname": alt, "decimals": 4 if fiat else 10,
                             "display_decimals": 2 if fiat else 5, "collateral_value": 1, "status": "enabled"}
        return out

    async def _pub_Ticker(self, params: Mapping[str, str]) -> Any:
        rest_id = self._pair_param(params)
        bid, ask = self.quote(rest_id)
        mid = self.mid[rest_id]
        return {rest_id: {"a": [s8(ask), "1", "1.000"], "b": [s8(bid), "1", "1.000"], "c": [s8(mid), "0.01"],
                          "v": ["1.0", "2.0"], "p": [s8(mid), s8(mid)], "t": [1, 2], "l": [s8(mid), s8(mid)],
                          "h": [s8(mid), s8(mid)], "o": s8(mid)}}

    async def _pub_Depth(self, params: Mapping[str, str]) -> Any:
        rest_id = self._pair_param(params)
        bid, ask = self.quote(rest_id)
        tick = Decimal(self.asset_pairs[rest_id].get("tick_size", "0.1"))
        n, now = int(params.get("count", 10)), int(time.time())
        return {rest_id: {"bids": [[s8(bid - i * tick), "1.000", now] for i in range(n)],
                          "asks": [[s8(ask + i * tick), "1.000", now] for i in range(n)]}}

    async def _pub_OHLC(self, params: Mapping[str, str]) -> Any:
        rest_id = self._pair_param(params)
        interval = int(params.get("interval", 1))
        rows = self.candles.get((rest_id, interval), [])
        since = int(params.get("since", 0))
        picked = [r for r in rows if r[0] + interval * 60 > since][-720:]
        last = rows[-2][0] if len(rows) > 1 else (rows[0][0] if rows else 0)
        return {rest_id: picked, "last": last}
