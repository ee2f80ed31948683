"""Coinbase Advanced Trade replies -> the contract's dataclasses (pure, tested on recorded replies)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchanges._http import dec, dec_or_zero, utc_from_epoch, utc_from_iso
from exchanges.base import Balance, Candle, Fill, Order, OrderBook, OrderStatus, OrderType, Side, Ticker
from exchanges.coinbase.symbols import CoinbaseSymbols
from exchanges.errors import MalformedResponse

_STATUS = {
    "PENDING": OrderStatus.SUBMITTED, "QUEUED": OrderStatus.SUBMITTED, "OPEN": OrderStatus.SUBMITTED,
    "CANCEL_QUEUED": OrderStatus.SUBMITTED, "EDIT_QUEUED": OrderStatus.SUBMITTED,
    "FILLED": OrderStatus.FILLED, "CANCELLED": OrderStatus.CANCELLED, "EXPIRED": OrderStatus.EXPIRED,
    "FAILED": OrderStatus.REJECTED,
}


def side(value: Any) -> Side:
    if value in ("BUY", "buy"):
        return Side.BUY
    if value in ("SELL", "sell"):
        return Side.SELL
    raise MalformedResponse(f"Coinbase: unknown side {value!r}")


def order_status(value: str, filled: Decimal) -> OrderStatus:
    status = _STATUS.get(value)
    if status is None:
        raise MalformedResponse(f"Coinbase: unknown order status {value!r}")
    if status is OrderStatus.SUBMITTED and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def order_shape(config: Mapping[str, Any]) -> tuple[OrderType, Decimal | None, Decimal | None]:
    """(type, base quantity if given, limit price) from ``order_configuration``."""
    if not isinstance(config, Mapping) or len(config) != 1:
        raise MalformedResponse("Coinbase order: order_configuration must hold one entry")
    (kind, params), = config.items()
    base = params.get("base_size")
    limit = params.get("limit_price")
    otype = OrderType.MARKET if kind.startswith("market") else OrderType.LIMIT
    return otype, dec(base) if base not in (None, "") else None, dec(limit) if limit not in (None, "") else None


def parse_order(raw: Mapping[str, Any], symbols: CoinbaseSymbols) -> Order:
    try:
        product = symbols.by_product_id(raw["product_id"])
        otype, base_size, limit = order_shape(raw["order_configuration"])
        filled = dec_or_zero(raw.get("filled_size"), what="filled_size")
        value = dec_or_zero(raw.get("filled_value"), what="filled_value")
        avg = dec_or_zero(raw.get("average_filled_price"), what="average_filled_price")
        if avg == 0 and filled > 0 and value > 0:
            avg = value / filled
        reason = raw.get("reject_message") or raw.get("cancel_message") or ""
        if raw.get("status") == "FAILED" and not reason:
            reason = str(raw.get("reject_reason") or "")
        return Order(
            client_order_id=str(raw.get("client_order_id") or ""),
            venue_order_id=str(raw["order_id"]),
            pair=product.pair,
            side=side(raw["side"]),
            type=otype,
            qty=base_size if base_size is not None else filled,
            status=order_status(str(raw["status"]), filled),
            filled_qty=filled,
            avg_price=avg or None,
            fee=dec_or_zero(raw.get("total_fees"), what="total_fees"),
            fee_currency=product.market.quote,
            limit_price=limit if otype is OrderType.LIMIT else None,
            created_at=utc_from_iso(raw["created_time"]) if raw.get("created_time") else None,
            reject_reason=str(reason),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Coinbase order: missing or bad field ({exc!r})") from exc


def parse_fill(raw: Mapping[str, Any], symbols: CoinbaseSymbols, client_order_id: str = "") -> Fill:
    """One entry of ``/orders/historical/fills``; ``size`` may be quoted in the quote currency."""
    try:
        product = symbols.by_product_id(raw["product_id"])
        price = dec(raw["price"], what="price")
        size = dec(raw["size"], what="size")
        qty = size / price if raw.get("size_in_quote") and price > 0 else size
        return Fill(
            fill_id=str(raw.get("entry_id") or raw["trade_id"]),
            client_order_id=client_order_id,
            venue_order_id=str(raw["order_id"]),
            pair=product.pair,
            side=side(raw["side"]),
            qty=qty,
            price=price,
            fee=dec_or_zero(raw.get("commission"), what="commission"),
            fee_currency=product.market.quote,
            ts=utc_from_iso(raw["trade_time"]),
            liquidity="maker" if raw.get("liquidity_indicator") == "MAKER" else "taker",
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Coinbase fill: missing or bad field ({exc!r})") from exc


def parse_candles(payload: Mapping[str, Any], pair: str, timeframe_s: int) -> list[Candle]:
    rows = payload.get("candles")
    if not isinstance(rows, list):
        raise MalformedResponse("Coinbase candles: no 'candles' list")
    try:
        candles = [Candle(pair=pair, timeframe_s=timeframe_s, ts=utc_from_epoch(r["start"]), open=dec(r["open"]),
                          high=dec(r["high"]), low=dec(r["low"]), close=dec(r["close"]), volume=dec(r["volume"]))
                   for r in rows]
    except (KeyError, TypeError) as exc:
        raise MalformedResponse("Coinbase candles: bad row") from exc
    return sorted(candles, key=lambda c: c.ts)


def parse_ticker(payload: Mapping[str, Any], pair: str, now: datetime) -> Ticker:
    trades = payload.get("trades") or []
    try:
        last = dec(trades[0]["price"]) if trades else dec(payload["best_bid"])
        ts = utc_from_iso(trades[0]["time"]) if trades and trades[0].get("time") else now
        return Ticker(pair=pair, bid=dec(payload["best_bid"], what="best_bid"),
                      ask=dec(payload["best_ask"], what="best_ask"), last=last, ts=ts)
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedResponse("Coinbase ticker: missing best_bid/best_ask") from exc


def parse_book(payload: Mapping[str, Any], pair: str, now: datetime) -> OrderBook:
    book = payload.get("pricebook")
    if not isinstance(book, Mapping):
        raise MalformedResponse("Coinbase product_book: no 'pricebook'")
    try:
        bids = tuple((dec(b["price"]), dec(b["size"])) for b in book.get("bids", []))
        asks = tuple((dec(a["price"]), dec(a["size"])) for a in book.get("asks", []))
    except (KeyError, TypeError) as exc:
        raise MalformedResponse("Coinbase product_book: bad level") from exc
    return OrderBook(pair=pair, bids=bids, asks=asks, ts=utc_from_iso(book["time"]) if book.get("time") else now)


def parse_accounts(accounts: list[Any]) -> dict[str, Balance]:
    """``/accounts`` entries: ``available_balance`` is free, ``hold`` is reserved by open orders."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    try:
        for acc in accounts:
            ccy = acc["currency"]
            free = dec(acc["available_balance"]["value"], what="available_balance")
            held = dec_or_zero((acc.get("hold") or {}).get("value"), what="hold")
            t, a = totals.get(ccy, (Decimal(0), Decimal(0)))
            totals[ccy] = (t + free + held, a + free)
    except (KeyError, TypeError) as exc:
        raise MalformedResponse("Coinbase accounts: bad entry") from exc
    return {ccy: Balance(currency=ccy, total=t, available=a) for ccy, (t, a) in totals.items()}
