"""The fake Kraken's private REST calls and its tiny matching model (see :mod:`.kraken`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

Q8 = Decimal("0.00000001")


class KrakenRefusal(Exception):
    """Answered as ``{"error": [message]}`` like Kraken does."""


def ref(prefix: str) -> str:
    raw = secrets.token_hex(8).upper()
    return f"{prefix}{raw[:5]}-{raw[5:10]}-{raw[10:16]}"


def s8(value: Decimal) -> str:
    return f"{value.quantize(Q8):f}"


class KrakenPrivateMixin:
    # provided by FakeKraken
    asset_pairs: dict[str, Any]
    balances: dict[str, Decimal]
    orders: dict[str, dict[str, Any]]
    trades: dict[str, dict[str, Any]]
    tokens: set[str]
    max_fill_qty: Decimal | None
    taker_fee: Decimal
    maker_fee: Decimal
    key_can_withdraw: bool

    # -- balances ---------------------------------------------------------------------------------

    def _held(self) -> dict[str, Decimal]:
        held: dict[str, Decimal] = {}
        for o in self.orders.values():
            if o["status"] != "open":
                continue
            info = self.asset_pairs[o["_pair"]]
            left = Decimal(o["vol"]) - Decimal(o["vol_exec"])
            if o["descr"]["type"] == "buy":
                price = Decimal(o["descr"]["price"])
                held[info["quote"]] = held.get(info["quote"], Decimal(0)) + left * price * (1 + self.taker_fee)
            else:
                held[info["base"]] = held.get(info["base"], Decimal(0)) + left
        return held

    async def _priv_Balance(self, params: Mapping[str, str]) -> Any:
        return {code: f"{amount:.10f}" for code, amount in self.balances.items()}

    async def _priv_BalanceEx(self, params: Mapping[str, str]) -> Any:
        held = self._held()
        return {code: {"balance": f"{amount:.10f}", "hold_trade": f"{held.get(code, Decimal(0)):.10f}"}
                for code, amount in self.balances.items()}

    def _available(self, code: str) -> Decimal:
        return self.balances.get(code, Decimal(0)) - self._held().get(code, Decimal(0))

    # -- orders -----------------------------------------------------------------------------------

    async def _priv_AddOrder(self, params: Mapping[str, str]) -> Any:
        rest_id = self._pair_param(params)  # type: ignore[attr-defined]
        info = self.asset_pairs[rest_id]
        side, otype = params.get("type"), params.get("ordertype")
        if side not in ("buy", "sell") or otype not in ("market", "limit"):
            raise KrakenRefusal("EGeneral:Invalid arguments")
        try:
            vol = Decimal(params["volume"])
            price = Decimal(params["price"]) if otype == "limit" else Decimal(0)
        except (KeyError, ArithmeticError):
            raise KrakenRefusal("EGeneral:Invalid arguments") from None
        if vol < Decimal(info["ordermin"]):
            raise KrakenRefusal("EGeneral:Invalid arguments:volume minimum not met")
        if price and vol * price < Decimal(info.get("costmin") or 0):
            raise KrakenRefusal("EOrder:Cost minimum not met")
        cl_ord_id = params.get("cl_ord_id")
        if cl_ord_id and any(o.get("cl_ord_id") == cl_ord_id and o["status"] == "open" for o in self.orders.values()):
            raise KrakenRefusal("EOrder:Duplicate order")
        bid, ask = self.quote(rest_id)  # type: ignore[attr-defined]
        reference = price if otype == "limit" else ask
        if side == "buy" and self._available(info["quote"]) < vol * reference * (1 + self.taker_fee):
            raise KrakenRefusal("EOrder:Insufficient funds")
        if side == "sell" and self._available(info["base"]) < vol:
            raise KrakenRefusal("EOrder:Insufficient funds")
        txid = ref("O")
        order: dict[str, Any] = {
            "refid": None, "userref": 0, "status": "open", "opentm": round(time.time(), 4), "starttm": 0,
            "expiretm": 0,
            "descr": {"pair": info["altname"], "type": side, "ordertype": otype, "price": s8(price) if price else "0",
                      "price2": "0", "leverage": "none",
                      "order": f"{side} {s8(vol)} {info['altname']} @ {otype}{' ' + s8(price) if price else ''}",
                      "close": ""},
            "vol": s8(vol), "vol_exec": s8(Decimal(0)), "cost": s8(Decimal(0)), "fee": s8(Decimal(0)),
            "price": s8(Decimal(0)), "stopprice": s8(Decimal(0)), "limitprice": s8(Decimal(0)), "misc": "",
            "oflags": "fciq", "trades": [], "reason": None, "_pair": rest_id,
        }
        if cl_ord_id:
            order["cl_ord_id"] = cl_ord_id
        self.orders[txid] = order
        await self._exec_report(txid, order, "new")  # type: ignore[attr-defined]
        if otype == "market":
            await self._execute(order, self._fill_qty(order), ask if side == "buy" else bid, maker=False)
            if order["status"] == "open":  # a market order never rests: the unfilled rest is cancelled
                order["status"], order["reason"] = "canceled", "Insufficient liquidity"
        elif (side == "buy" and ask <= price) or (side == "sell" and bid >= price):
            await self._execute(order, self._fill_qty(order), ask if side == "buy" else bid, maker=False)
        return {"descr": {"order": order["descr"]["order"]}, "txid": [txid]}

    def _fill_qty(self, order: Mapping[str, Any]) -> Decimal:
        left = Decimal(order["vol"]) - Decimal(order["vol_exec"])
        return min(left, self.max_fill_qty) if self.max_fill_qty else left

    async def _execute(self, order: dict[str, Any], qty: Decimal, price: Decimal, *, maker: bool) -> None:
        if qty <= 0 or order["status"] != "open":
            return
        txid = next(t for t, o in self.orders.items() if o is order)
        info = self.asset_pairs[order["_pair"]]
        cost = qty * price
        fee = (cost * (self.maker_fee if maker else self.taker_fee)).quantize(Q8)
        buy = order["descr"]["type"] == "buy"
        base, quote = info["base"], info["quote"]
        self.balances[base] = self.balances.get(base, Decimal(0)) + (qty if buy else -qty)
        self.balances[quote] = self.balances.get(quote, Decimal(0)) + (-(cost + fee) if buy else cost - fee)
        vol_exec = Decimal(order["vol_exec"]) + qty
        total_cost = Decimal(order["cost"]) + cost
        order["vol_exec"], order["cost"] = s8(vol_exec), s8(total_cost)
        order["fee"] = s8(Decimal(order["fee"]) + fee)
        order["price"] = s8(total_cost / vol_exec)
        trade_id = ref("T")
        order["trades"].append(trade_id)
        if vol_exec >= Decimal(order["vol"]):
            order["status"], order["closetm"] = "closed", round(time.time(), 4)
        self.trades[trade_id] = {
            "ordertxid": txid, "postxid": ref("P"), "pair": order["_pair"], "time": round(time.time(), 4),
            "type": order["descr"]["type"], "ordertype": order["descr"]["ordertype"], "price": s8(price),
            "cost": s8(cost), "fee": s8(fee), "vol": s8(qty), "margin": "0.00000000", "misc": "",
            "trade_id": len(self.trades) + 1, "maker": maker,
        }
        await self._trade_report(txid, order, trade_id, self.trades[trade_id])  # type: ignore[attr-defined]

    def _view(self, order: Mapping[str, Any], with_trades: bool = True) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if not k.startswith("_")}
        if not with_trades or not view.get("trades"):
            view.pop("trades", None)
        return view

    def _select(self, status: set[str], params: Mapping[str, str]) -> dict[str, Any]:
        wanted = params.get("cl_ord_id")
        return {t: self._view(o, params.get("trades") == "true") for t, o in self.orders.items()
                if o["status"] in status and (not wanted or o.get("cl_ord_id") == wanted)}

    async def _priv_OpenOrders(self, params: Mapping[str, str]) -> Any:
        return {"open": self._select({"open", "pending"}, params)}

    async def _priv_ClosedOrders(self, params: Mapping[str, str]) -> Any:
        closed = self._select({"closed", "canceled", "expired"}, params)
        newest = dict(sorted(closed.items(), key=lambda kv: kv[1].get("closetm", kv[1]["opentm"]), reverse=True)[:50])
        return {"closed": newest, "count": len(closed)}

    async def _priv_QueryOrders(self, params: Mapping[str, str]) -> Any:
        out = {}
        for txid in params.get("txid", "").split(","):
            if txid not in self.orders:
                raise KrakenRefusal("EOrder:Invalid order")
            out[txid] = self._view(self.orders[txid], params.get("trades") == "true")
        return out

    async def _priv_CancelOrder(self, params: Mapping[str, str]) -> Any:
        key = params.get("txid") or params.get("cl_ord_id")
        match = [(t, o) for t, o in self.orders.items() if key in (t, o.get("cl_ord_id")) and o["status"] == "open"]
        if not match:
            raise KrakenRefusal("EOrder:Unknown order")
        for txid, order in match:
            order["status"], order["reason"], order["closetm"] = "canceled", "User requested", round(time.time(), 4)
            await self._exec_report(txid, order, "canceled")  # type: ignore[attr-defined]
        return {"count": len(match)}

    async def _priv_TradesHistory(self, params: Mapping[str, str]) -> Any:
        ids = list(self.trades)
        start = params.get("start")
        if start in self.trades:
            ids = ids[ids.index(start) + 1:]
        newest_first = list(reversed(ids))
        ofs = int(params.get("ofs", 0))
        page = newest_first[ofs:ofs + 50]
        return {"trades": {t: self.trades[t] for t in page}, "count": len(ids)}

    async def _priv_QueryTrades(self, params: Mapping[str, str]) -> Any:
        return {t: self.trades[t] for t in params.get("txid", "").split(",") if t in self.trades}

    async def _priv_GetWebSocketsToken(self, params: Mapping[str, str]) -> Any:
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return {"token": token, "expires": 900}

    async def _priv_WithdrawInfo(self, params: Mapping[str, str]) -> Any:
        if not self.key_can_withdraw:
            raise KrakenRefusal("EGeneral:Permission denied")
        raise KrakenRefusal("EFunding:Unknown withdraw key")
