"""The fake Coinbase's order endpoints and matching model (see :mod:`.coinbase`)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web


class CoinbaseRefusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CoinbaseOrdersMixin:
    # provided by FakeCoinbase
    products: dict[str, dict[str, Any]]
    balances: dict[str, Decimal]
    orders: dict[str, dict[str, Any]]
    fills: list[dict[str, Any]]
    mid: dict[str, Decimal]
    max_fill_qty: Decimal | None
    taker_fee: Decimal
    maker_fee: Decimal

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o["client_order_id"] == client_order_id), None)

    async def set_price(self, pair: str, mid: Decimal, spread: Decimal = Decimal(0)) -> None:
        """Move the market; resting limit orders the new price crosses fill at their limit (maker)."""
        pid = self.product_id(pair)  # type: ignore[attr-defined]
        self.mid[pid], self.spread[pid] = Decimal(mid), Decimal(spread)  # type: ignore[attr-defined]
        for order in list(self.orders.values()):
            if order["product_id"] != pid or order["status"] != "OPEN":
                continue
            limit = Decimal(order["order_configuration"]["limit_limit_gtc"]["limit_price"])
            bid, ask = self.quote(pid)  # type: ignore[attr-defined]
            if (order["side"] == "BUY" and ask <= limit) or (order["side"] == "SELL" and bid >= limit):
                await self._execute(order, self._fill_qty(order), limit, maker=True)

    async def fill(self, client_order_id: str, qty: Decimal, price: Decimal | None = None) -> None:
        order = self.order_by_client_id(client_order_id)
        assert order is not None, client_order_id
        limit = order["order_configuration"].get("limit_limit_gtc", {}).get("limit_price")
        await self._execute(order, Decimal(qty), price or Decimal(limit), maker=True)

    def _fill_qty(self, order: dict[str, Any]) -> Decimal:
        size = Decimal(next(iter(order["order_configuration"].values()))["base_size"])
        left = size - Decimal(order["filled_size"])
        return min(left, self.max_fill_qty) if self.max_fill_qty else left

    async def _create_order(self, request: web.Request, body: Any) -> Any:
        if not isinstance(body, dict):
            raise CoinbaseRefusal(400, "INVALID_ARGUMENT", "body must be a JSON object")
        cid = str(body.get("client_order_id") or "")
        existing = self.order_by_client_id(cid) if cid else None
        if existing is not None:  # Coinbase: a known client_order_id returns that order, creates nothing
            return self._success(existing)
        pid = body.get("product_id", "")
        if pid not in self.products:
            return self._failure(body, "UNKNOWN_PRODUCT_ID", "unknown product")
        product = self.products[pid]
        config = body.get("order_configuration") or {}
        if len(config) != 1 or next(iter(config)) not in ("market_market_ioc", "limit_limit_gtc"):
            return self._failure(body, "UNSUPPORTED_ORDER_CONFIGURATION", "unsupported order configuration")
        kind, params = next(iter(config.items()))
        size = Decimal(params["base_size"])
        if size < Decimal(product["base_min_size"]):
            return self._failure(body, "INVALID_SIZE_PRECISION", "size below base_min_size")
        bid, ask = self.quote(pid)  # type: ignore[attr-defined]
        price = Decimal(params["limit_price"]) if kind == "limit_limit_gtc" else ask
        if size * price < Decimal(product.get("quote_min_size") or 0):
            return self._failure(body, "INVALID_LIMIT_PRICE", "order value below quote_min_size")
        side = body.get("side")
        if side == "BUY" and self.available(product["quote_currency_id"]) < size * price * (1 + self.taker_fee):  # type: ignore[attr-defined]
            return self._failure(body, "INSUFFICIENT_FUND", "Insufficient balance in source account")
        if side == "SELL" and self.available(product["base_currency_id"]) < size:  # type: ignore[attr-defined]
            return self._failure(body, "INSUFFICIENT_FUND", "Insufficient balance in source account")
        order_id = str(uuid.uuid4())
        order = {
            "order_id": order_id, "product_id": pid, "user_id": "fake-user", "order_configuration": config,
            "side": side, "client_order_id": cid, "status": "OPEN",
            "time_in_force": "IMMEDIATE_OR_CANCEL" if kind == "market_market_ioc" else "GOOD_UNTIL_CANCELLED",
            "created_time": iso(time.time()), "completion_percentage": "0", "filled_size": "0",
            "average_filled_price": "0", "fee": "", "number_of_fills": "0", "filled_value": "0",
            "pending_cancel": False, "size_in_quote": False, "total_fees": "0", "size_inclusive_of_fees": False,
            "total_value_after_fees": "0", "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "MARKET" if kind == "market_market_ioc" else "LIMIT",
            "reject_reason": "REJECT_REASON_UNSPECIFIED", "settled": False, "product_type": "SPOT",
            "reject_message": "", "cancel_message": "", "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0", "is_liquidation": False, "last_fill_time": None, "edit_history": [],
            "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE",
        }
        self.orders[order_id] = order
        await self._user_update(order)  # type: ignore[attr-defined]
        if kind == "market_market_ioc":
            await self._execute(order, self._fill_qty(order), ask if side == "BUY" else bid, maker=False)
            if order["status"] == "OPEN":
                order["status"], order["cancel_message"] = "CANCELLED", "IOC remainder cancelled"
                await self._user_update(order)  # type: ignore[attr-defined]
        elif (side == "BUY" and ask <= price) or (side == "SELL" and bid >= price):
            await self._execute(order, self._fill_qty(order), ask if side == "BUY" else bid, maker=False)
        return self._success(order)

    @staticmethod
    def _success(order: dict[str, Any]) -> dict[str, Any]:
        return {"success": True,
                "success_response": {"order_id": order["order_id"], "product_id": order["product_id"],
                                     "side": order["side"], "client_order_id": order["client_order_id"]},
                "order_configuration": order["order_configuration"]}

    @staticmethod
    def _failure(body: dict[str, Any], code: str, message: str) -> dict[str, Any]:
        return {"success": False, "error_response": {"error": code, "message": message, "error_details": message,
                                                     "preview_failure_reason": f"PREVIEW_{code}",
                                                     "new_order_failure_reason": code},
                "order_configuration": body.get("order_configuration")}

    async def _execute(self, order: dict[str, Any], qty: Decimal, price: Decimal, *, maker: bool) -> None:
        if qty <= 0 or order["status"] != "OPEN":
            return
        product = self.products[order["product_id"]]
        base, quote = product["base_currency_id"], product["quote_currency_id"]
        value = qty * price
        fee = (value * (self.maker_fee if maker else self.taker_fee)).quantize(Decimal("0.00000001"))
        buy = order["side"] == "BUY"
        self.balances[base] = self.balances.get(base, Decimal(0)) + (qty if buy else -qty)
        self.balances[quote] = self.balances.get(quote, Decimal(0)) + (-(value + fee) if buy else value - fee)
        filled = Decimal(order["filled_size"]) + qty
        total_value = Decimal(order["filled_value"]) + value
        size = Decimal(next(iter(order["order_configuration"].values()))["base_size"])
        now = time.time()
        order.update({
            "filled_size": f"{filled:f}", "filled_value": f"{total_value:f}",
            "average_filled_price": f"{total_value / filled:f}",
            "total_fees": f"{Decimal(order['total_fees']) + fee:f}",
            "number_of_fills": str(int(order["number_of_fills"]) + 1),
            "completion_percentage": f"{filled * 100 / size:.2f}", "last_fill_time": iso(now),
        })
        if filled >= size:
            order["status"], order["settled"] = "FILLED", True
        stamp = iso(now)
        self.fills.append({
            "entry_id": uuid.uuid4().hex + uuid.uuid4().hex, "trade_id": str(uuid.uuid4()),
            "order_id": order["order_id"], "trade_time": stamp, "trade_type": "FILL", "price": f"{price:f}",
            "size": f"{qty:f}", "commission": f"{fee:f}", "product_id": order["product_id"],
            "sequence_timestamp": stamp, "liquidity_indicator": "MAKER" if maker else "TAKER",
            "size_in_quote": False, "user_id": "fake-user", "side": order["side"],
            "retail_portfolio_id": "fake-portfolio",
        })
        await self._user_update(order)  # type: ignore[attr-defined]

    async def _get_order(self, request: web.Request, body: Any) -> Any:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            raise CoinbaseRefusal(404, "NOT_FOUND", "order with this orderID was not found")
        return {"order": order}

    async def _list_orders(self, request: web.Request, body: Any) -> Any:
        statuses = self.query_list(request, "order_status")  # type: ignore[attr-defined]
        products = self.query_list(request, "product_ids")  # type: ignore[attr-defined]
        picked = [o for o in reversed(list(self.orders.values()))
                  if (not statuses or o["status"] in statuses) and (not products or o["product_id"] in products)]
        start = int(request.query.get("cursor") or 0)
        limit = int(request.query.get("limit", 100))
        page = picked[start:start + limit]
        more = start + limit < len(picked)
        return {"orders": page, "sequence": "0", "has_next": more, "cursor": str(start + limit) if more else ""}

    async def _batch_cancel(self, request: web.Request, body: Any) -> Any:
        results = []
        for order_id in (body or {}).get("order_ids", []):
            order = self.orders.get(order_id)
            if order is None or order["status"] != "OPEN":
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": order_id})
                continue
            order["status"], order["cancel_message"] = "CANCELLED", "User requested cancel"
            await self._user_update(order)  # type: ignore[attr-defined]
            results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id})
        return {"results": results}

    async def _list_fills(self, request: web.Request, body: Any) -> Any:
        since = request.query.get("start_sequence_timestamp")
        picked = [f for f in reversed(self.fills) if not since or f["sequence_timestamp"] >= since]
        start = int(request.query.get("cursor") or 0)
        limit = int(request.query.get("limit", 100))
        page = picked[start:start + limit]
        more = start + limit < len(picked)
        return {"fills": page, "cursor": str(start + limit) if more else ""}
