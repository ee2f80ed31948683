"""A fake Coinbase Advanced Trade venue: REST (``/api/v3/brokerage``) and WebSocket on loopback.

Replies follow the recorded Coinbase payloads in ``tests/exchanges/fixtures``. Every private call
must carry a valid CDP JWT (ES256, ``kid``/``sub`` = key name, ``iss`` = ``cdp``, two-minute
lifetime, ``uri`` = ``"METHOD host/path"``), verified with the key's public half; anything else
gets Coinbase's ``401 Unauthorized``. ``client_order_id`` is deduplicated as Coinbase does: a
second create with a known id returns the existing order and creates nothing.

    async with FakeCoinbase() as fake:
        venue = CoinbaseExchange(fake.key_name, fake.private_key_pem, rest_url=fake.rest_url,
                                 ws_url=fake.ws_url, ws_user_url=fake.ws_user_url)
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.exchanges.fakes._server import FakeServer, dumps
from tests.exchanges.fakes.coinbase_orders import CoinbaseOrdersMixin, CoinbaseRefusal, iso
from tests.exchanges.fakes.coinbase_ws import CoinbaseWsMixin

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ccxt"
PREFIX = "/api/v3/brokerage"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeCoinbase(CoinbaseOrdersMixin, CoinbaseWsMixin, FakeServer):
    def __init__(self, *, products: list[dict[str, Any]] | None = None, heartbeat_s: float = 0.2,
                 can_transfer: bool = False) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = self._key.public_key()
        self.key_name = f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
        self.private_key_pem = self._key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                                       serialization.NoEncryption()).decode()
        if products is None:
            products = json.loads((FIXTURES / "markets" / "coinbase_products.json").read_text())["products"]
        self.products = {p["product_id"]: p for p in products}
        self.heartbeat_s = heartbeat_s
        self.can_transfer = can_transfer
        self.server_time_offset_s = 0.0
        self.balances: dict[str, Decimal] = {}
        self.mid: dict[str, Decimal] = {}
        self.spread: dict[str, Decimal] = {}
        self.max_fill_qty: Decimal | None = None
        self.taker_fee, self.maker_fee = Decimal("0.006"), Decimal("0.004")
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.candles: dict[tuple[str, int], dict[int, dict[str, str]]] = {}
        self.seen_jwts: list[dict[str, Any]] = []
        super().__init__()

    def _routes(self) -> None:
        r = self.app.router
        routes: list[tuple[str, str, Callable[..., Awaitable[Any]], bool]] = [
            ("GET", "/time", self._time, False),
            ("GET", "/products", self._products, True),
            ("GET", "/products/{product_id}/ticker", self._ticker, True),
            ("GET", "/products/{product_id}/candles", self._candles, True),
            # the public candles (no key): same data, as `tradectl data download` reads it
            ("GET", "/market/products/{product_id}/candles", self._candles, False),
            ("GET", "/product_book", self._book, True),
            ("GET", "/accounts", self._accounts, True),
            ("GET", "/key_permissions", self._key_permissions, True),
            ("POST", "/orders", self._create_order, True),
            ("POST", "/orders/batch_cancel", self._batch_cancel, True),
            ("GET", "/orders/historical/batch", self._list_orders, True),
            ("GET", "/orders/historical/fills", self._list_fills, True),
            ("GET", "/orders/historical/{order_id}", self._get_order, True),
        ]
        for verb, path, handler, auth in routes:
            r.add_route(verb, PREFIX + path, self._endpoint(f"{verb} {path}", handler, auth))
        # What ccxt's coinbase class asks for while loading markets (the native adapter does not):
        # the public product list, the account's fee tier, and the v2 currency lists and rates.
        extra: list[tuple[str, Callable[..., Awaitable[Any]], bool]] = [
            (PREFIX + "/market/products", self._products, False),
            (PREFIX + "/market/products/{product_id}/ticker", self._ticker, False),
            (PREFIX + "/market/products/{product_id}/candles", self._candles, False),
            (PREFIX + "/market/product_book", self._book, False),
            (PREFIX + "/transaction_summary", self._transaction_summary, True),
            ("/v2/currencies", self._v2_fiat, False),
            ("/v2/currencies/crypto", self._v2_crypto, False),
            ("/v2/exchange-rates", self._v2_rates, False),
        ]
        for path, handler, auth in extra:
            r.add_get(path, self._endpoint(f"GET {path.removeprefix(PREFIX)}", handler, auth))
        r.add_get("/ws", self._ws_market)
        r.add_get("/ws-user", self._ws_user)

    @property
    def rest_url(self) -> str:
        return self.http_url

    @property
    def ws_url(self) -> str:
        return f"{self.ws_base}/ws"

    @property
    def ws_user_url(self) -> str:
        return f"{self.ws_base}/ws-user"

    # -- test controls ------------------------------------------------------------------------------

    def product_id(self, pair: str) -> str:
        return pair.replace("/", "-")

    def set_balance(self, currency: str, amount: Decimal) -> None:
        self.balances[currency] = Decimal(amount)

    def quote(self, product_id: str) -> tuple[Decimal, Decimal]:
        mid = self.mid.get(product_id)
        if mid is None:
            raise CoinbaseRefusal(503, "UNAVAILABLE", "no market")
        half = self.spread.get(product_id, Decimal(0)) / 2
        return mid - half, mid + half

    def add_candles(self, pair: str, timeframe_s: int, rows: list[dict[str, str]]) -> None:
        """History only; rows are Coinbase candle objects (``start`` in epoch seconds)."""
        series = self.candles.setdefault((self.product_id(pair), timeframe_s), {})
        for row in rows:
            series[int(row["start"])] = dict(row)

    # -- auth -----------------------------------------------------------------------------------------

    def verify_jwt(self, token: str, uri: str | None) -> str | None:
        """None when valid, else what is wrong (the reply itself only ever says Unauthorized)."""
        try:
            head_b64, claims_b64, sig_b64 = token.split(".")
            header, claims = json.loads(_unb64(head_b64)), json.loads(_unb64(claims_b64))
            sig = _unb64(sig_b64)
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            self.public_key.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature, TypeError):
            return "bad signature or encoding"
        self.seen_jwts.append({"header": header, "claims": claims})
        now = time.time()
        if header.get("alg") != "ES256" or header.get("kid") != self.key_name or not header.get("nonce"):
            return "bad header"
        # "cdp" is what Coinbase's SDKs send; "coinbase-cloud" is the issuer of Coinbase's earlier Advanced
        # Trade examples, which ccxt's coinbase class still sends for ES256 keys.
        if claims.get("iss") not in ("cdp", "coinbase-cloud") or claims.get("sub") != self.key_name:
            return "bad issuer or subject"
        if not (claims["nbf"] <= now + 5 and now < claims["exp"] <= claims["nbf"] + 120):
            return "expired or not yet valid"
        # ccxt strips only "https://" from the URL it signs; on this plain-http loopback fake the scheme
        # stays in the claim, which is accepted here (a real Coinbase URL is always https).
        method, _, rest = (uri or "").partition(" ")
        if uri is not None and claims.get("uri") not in (uri, f"{method} http://{rest}"):
            return f"uri mismatch: {claims.get('uri')!r} != {uri!r}"
        return None

    # -- plumbing -----------------------------------------------------------------------------------------

    def _endpoint(self, name: str, handler: Callable[..., Awaitable[Any]], auth: bool) -> Any:
        async def serve(request: web.Request) -> web.Response:
            body = await request.json() if request.can_read_body else None
            self.calls.append((name, {"query": dict(request.query), "body": body}))
            if auth:
                token = request.headers.get("Authorization", "").removeprefix("Bearer ")
                if self.verify_jwt(token, f"{request.method} {request.host}{request.path}") is not None:
                    return web.Response(status=401, text="Unauthorized\n")
            fault = self.fault_for(name)
            if fault is not None:
                if fault.kind in ("http429", "rate_limit"):
                    return web.json_response({"error": "rate_limit_exceeded", "message": "Too many requests"},
                                             status=429, headers={"Retry-After": str(fault.retry_after)})
                if fault.kind == "http500":
                    return web.Response(status=503, text="<html>503 Service Unavailable</html>",
                                        content_type="text/html")
                if fault.kind == "error":
                    return web.json_response({"error": fault.error, "message": fault.error}, status=400)
                if fault.kind == "malformed":
                    return web.Response(text='{"orders": [{"order_id": ', content_type="application/json")
                if fault.kind == "timeout":
                    await asyncio.sleep(fault.delay_s)
                    return web.Response(status=504, text="timeout")
            try:
                payload = await handler(request, body)
            except CoinbaseRefusal as exc:
                return web.json_response({"error": exc.code, "message": exc.message, "error_details": exc.message},
                                         status=exc.status)
            if fault is not None and fault.kind == "accept_then_timeout":
                await asyncio.sleep(fault.delay_s)
            return web.Response(text=dumps(payload), content_type="application/json")

        return serve

    # -- public-ish endpoints -------------------------------------------------------------------------------

    async def _time(self, request: web.Request, body: Any) -> Any:
        now = time.time() + self.server_time_offset_s
        return {"iso": iso(now), "epochSeconds": str(int(now)), "epochMillis": str(int(now * 1000))}

    async def _products(self, request: web.Request, body: Any) -> Any:
        kind = request.query.get("product_type")
        products = [p for p in self.products.values() if not kind or p.get("product_type") == kind]
        return {"products": products, "num_products": len(products)}

    def _product(self, product_id: str) -> dict[str, Any]:
        if product_id not in self.products:
            raise CoinbaseRefusal(404, "NOT_FOUND", f"ProductID {product_id} could not be found")
        return self.products[product_id]

    async def _ticker(self, request: web.Request, body: Any) -> Any:
        pid = self._product(request.match_info["product_id"])["product_id"]
        bid, ask = self.quote(pid)
        trade = {"trade_id": str(len(self.fills) + 1), "product_id": pid, "price": f"{self.mid[pid]:f}", "size": "0.01",
                 "time": iso(time.time()), "side": "BUY", "bid": "", "ask": ""}
        return {"trades": [trade], "best_bid": f"{bid:f}", "best_ask": f"{ask:f}"}

    async def _book(self, request: web.Request, body: Any) -> Any:
        pid = self._product(request.query.get("product_id", ""))["product_id"]
        bid, ask = self.quote(pid)
        tick = Decimal(self.products[pid]["price_increment"])
        n = int(request.query.get("limit", 10))
        return {"pricebook": {"product_id": pid, "time": iso(time.time()),
                              "bids": [{"price": f"{bid - i * tick:f}", "size": "1"} for i in range(n)],
                              "asks": [{"price": f"{ask + i * tick:f}", "size": "1"} for i in range(n)]}}

    async def _candles(self, request: web.Request, body: Any) -> Any:
        pid = self._product(request.match_info["product_id"])["product_id"]
        q = request.query
        seconds = {"ONE_MINUTE": 60, "FIVE_MINUTE": 300, "FIFTEEN_MINUTE": 900, "THIRTY_MINUTE": 1800,
                   "ONE_HOUR": 3600, "TWO_HOUR": 7200, "SIX_HOUR": 21600,
                   "ONE_DAY": 86400}.get(q.get("granularity", ""))
        if seconds is None:
            raise CoinbaseRefusal(400, "INVALID_ARGUMENT", "granularity is required")
        start, end = int(q["start"]), int(q["end"])
        if (end - start) // seconds > 350:
            raise CoinbaseRefusal(400, "INVALID_ARGUMENT", "number of candles requested should be less than 350")
        series = self.candles.get((pid, seconds), {})
        rows = [series[t] for t in sorted(series, reverse=True) if start <= t <= end]
        return {"candles": rows}

    async def _accounts(self, request: web.Request, body: Any) -> Any:
        held = self.held()
        accounts = [{"uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, ccy)), "name": f"{ccy} Wallet", "currency": ccy,
                     "available_balance": {"value": f"{amount - held.get(ccy, Decimal(0)):f}", "currency": ccy},
                     "default": True, "active": True, "created_at": "2023-01-01T00:00:00Z",
                     "updated_at": "2023-01-01T00:00:00Z", "deleted_at": None, "type": "ACCOUNT_TYPE_CRYPTO",
                     "ready": True, "hold": {"value": f"{held.get(ccy, Decimal(0)):f}", "currency": ccy},
                     "retail_portfolio_id": "fake-portfolio"} for ccy, amount in self.balances.items()]
        return {"accounts": accounts, "has_next": False, "cursor": "", "size": len(accounts)}

    def _currencies(self) -> tuple[list[str], list[str]]:
        """(fiat, crypto) ids the products use; USD/EUR/GBP count as fiat as on Coinbase."""
        ids = {p[k] for p in self.products.values() for k in ("base_currency_id", "quote_currency_id")
               if p.get("product_type") == "SPOT" and p[k]}
        fiat = sorted(i for i in ids if i in ("USD", "EUR", "GBP"))
        return fiat, sorted(ids - set(fiat))

    async def _v2_fiat(self, request: web.Request, body: Any) -> Any:
        return {"data": [{"id": c, "name": c, "min_size": "0.01"} for c in self._currencies()[0]]}

    async def _v2_crypto(self, request: web.Request, body: Any) -> Any:
        return {"data": [{"asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, c)), "code": c, "name": c, "color": "#000000",
                          "sort_index": 100, "exponent": 8, "type": "crypto", "address_regex": ".*"}
                         for c in self._currencies()[1]]}

    async def _v2_rates(self, request: web.Request, body: Any) -> Any:
        fiat, crypto = self._currencies()
        return {"data": {"currency": "USD", "rates": {c: "1" for c in fiat + crypto}}}

    async def _transaction_summary(self, request: web.Request, body: Any) -> Any:
        return {"total_volume": 0, "total_fees": 0, "advanced_trade_only_volume": 0, "advanced_trade_only_fees": 0,
                "coinbase_pro_volume": 0, "coinbase_pro_fees": 0, "total_balance": "0", "has_promo_fee": False,
                "fee_tier": {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "1000",
                             "taker_fee_rate": f"{self.taker_fee:f}", "maker_fee_rate": f"{self.maker_fee:f}",
                             "aop_from": "", "aop_to": ""}}

    async def _key_permissions(self, request: web.Request, body: Any) -> Any:
        return {"can_view": True, "can_trade": True, "can_transfer": self.can_transfer,
                "portfolio_uuid": "fake-portfolio", "portfolio_type": "DEFAULT"}

    def held(self) -> dict[str, Decimal]:
        held: dict[str, Decimal] = {}
        for o in self.orders.values():
            if o["status"] != "OPEN":
                continue
            p = self.products[o["product_id"]]
            cfg = next(iter(o["order_configuration"].values()))
            left = Decimal(cfg["base_size"]) - Decimal(o["filled_size"])
            if o["side"] == "BUY":
                ccy, amount = p["quote_currency_id"], left * Decimal(cfg["limit_price"]) * (1 + self.taker_fee)
            else:
                ccy, amount = p["base_currency_id"], left
            held[ccy] = held.get(ccy, Decimal(0)) + amount
        return held

    def available(self, ccy: str) -> Decimal:
        return self.balances.get(ccy, Decimal(0)) - self.held().get(ccy, Decimal(0))

    def query_list(self, request: web.Request, name: str) -> list[str]:
        return [v for k, v in request.query.items() if k == name]

    @staticmethod
    def params(request: web.Request) -> Mapping[str, str]:
        return request.query
