"""Kraken REST replies -> the contract's dataclasses. Pure functions, tested on recorded replies.

Numbers are read from Kraken's strings straight into ``Decimal``. A fill is never dropped because
a derived field is zero: when ``cost`` is 0 it is recomputed from ``vol * price`` and when the
average ``price`` is 0 it comes from ``cost / vol_exec``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchanges._http import dec, dec_or_zero, utc_from_epoch
from exchanges.base import Balance, Candle, Fill, Order, OrderBook, OrderStatus, OrderType, Side, Ticker
from exchanges.errors import MalformedResponse
from exchanges.kraken.symbols import KrakenSymbols

ClientIdLookup = Callable[[str], str | None]


def _side(value: Any) -> Side:
    if value == "buy":
        return Side.BUY
    if value == "sell":
        return Side.SELL
    raise MalformedResponse(f"Kraken: unknown side {value!r}")


def _order_type(value: Any) -> OrderType:
    return OrderType.MARKET if value in ("market", "stop-loss", "take-profit", "trailing-stop") else OrderType.LIMIT


def order_status(status: str, filled: Decimal) -> OrderStatus:
    if status == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    if status == "pending":
        return OrderStatus.SUBMITTED
    if status == "closed":
        return OrderStatus.FILLED
    if status == "canceled":
        return OrderStatus.CANCELLED
    if status == "expired":
        return OrderStatus.EXPIRED
    raise MalformedResponse(f"Kraken: unknown order status {status!r}")


def _fee_currency(oflags: str, base: str, quote: str) -> str:
    return base if "fcib" in oflags.split(",") else quote


def _limit_price(descr: Mapping[str, Any]) -> Decimal | None:
    """``price`` for limit orders; ``price2`` for stop/take-profit limits (``price`` is the trigger).
    Offsets such as ``+50.0000%`` (trailing orders) are not prices and give None."""
    kind = str(descr.get("ordertype", ""))
    text = descr.get("price2") if kind.endswith("-limit") else descr.get("price")
    try:
        value = dec(text, what="limit price")
    except MalformedResponse:
        return None
    return value if value > 0 else None


def average_price(price: Decimal, cost: Decimal, filled: Decimal) -> Decimal | None:
    if price > 0:
        return price
    if cost > 0 and filled > 0:
        return cost / filled
    return None


def parse_order(txid: str, raw: Mapping[str, Any], symbols: KrakenSymbols,
                client_id: ClientIdLookup = lambda txid: None) -> Order:
    """One entry of QueryOrders / OpenOrders / ClosedOrders."""
    try:
        descr = raw["descr"]
        pair = symbols.by_venue_name(descr["pair"])
        qty = dec(raw["vol"], what="vol")
        filled = dec_or_zero(raw.get("vol_exec"), what="vol_exec")
        cost = dec_or_zero(raw.get("cost"), what="cost")
        otype = _order_type(descr.get("ordertype"))
        limit = _limit_price(descr) if otype is OrderType.LIMIT else None
        cl_ord_id = raw.get("cl_ord_id") or client_id(txid) or ""
        return Order(
            client_order_id=str(cl_ord_id),
            venue_order_id=txid,
            pair=pair.pair,
            side=_side(descr.get("type")),
            type=otype,
            qty=qty,
            status=order_status(str(raw.get("status")), filled),
            filled_qty=filled,
            avg_price=average_price(dec_or_zero(raw.get("price"), what="price"), cost, filled),
            fee=dec_or_zero(raw.get("fee"), what="fee"),
            fee_currency=_fee_currency(str(raw.get("oflags") or ""), pair.market.base, pair.market.quote),
            limit_price=limit,
            created_at=utc_from_epoch(raw["opentm"]) if raw.get("opentm") else None,
            reject_reason=str(raw.get("reason") or "") if raw.get("status") in ("canceled", "expired") else "",
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Kraken order {txid}: missing or bad field ({exc!r})") from exc


def parse_orders(result: Mapping[str, Any], symbols: KrakenSymbols,
                 client_id: ClientIdLookup = lambda txid: None) -> list[Order]:
    if not isinstance(result, Mapping):
        raise MalformedResponse("Kraken orders: result is not an object")
    return [parse_order(txid, raw, symbols, client_id) for txid, raw in result.items()]


def parse_trade(trade_id: str, raw: Mapping[str, Any], symbols: KrakenSymbols,
                client_id: ClientIdLookup = lambda txid: None) -> Fill:
    """One entry of TradesHistory / QueryTrades: a (possibly partial) fill with its fee."""
    try:
        pair = symbols.by_venue_name(raw["pair"])
        qty = dec_or_zero(raw.get("vol"), what="vol")
        price = dec_or_zero(raw.get("price"), what="price")
        cost = dec_or_zero(raw.get("cost"), what="cost")
        if cost == 0 and qty > 0 and price > 0:
            cost = qty * price
        if price == 0 and qty > 0 and cost > 0:
            price = cost / qty
        if qty == 0 and price > 0 and cost > 0:
            qty = cost / price
        if qty <= 0:
            raise MalformedResponse(f"Kraken trade {trade_id}: no volume")
        order_txid = str(raw.get("ordertxid", ""))
        maker = raw.get("maker")
        return Fill(
            fill_id=trade_id,
            client_order_id=client_id(order_txid) or "",
            venue_order_id=order_txid,
            pair=pair.pair,
            side=_side(raw.get("type")),
            qty=qty,
            price=price,
            fee=dec_or_zero(raw.get("fee"), what="fee"),
            fee_currency=pair.market.quote,
            ts=utc_from_epoch(raw["time"]),
            liquidity="maker" if maker is True else "taker",
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Kraken trade {trade_id}: missing or bad field ({exc!r})") from exc


def parse_trades(trades: Mapping[str, Any], symbols: KrakenSymbols,
                 client_id: ClientIdLookup = lambda txid: None) -> list[Fill]:
    """Oldest first. Kraken lists newest first; fills sharing a timestamp keep the venue's order
    (sorting those by id would scramble them and break ``start=<trade id>`` paging)."""
    if not isinstance(trades, Mapping):
        raise MalformedResponse("Kraken trades: not an object")
    fills = [parse_trade(tid, raw, symbols, client_id) for tid, raw in reversed(list(trades.items()))]
    return sorted(fills, key=lambda f: f.ts)


def _only_entry(result: Any, what: str) -> Any:
    """Ticker/Depth/OHLC answer ``{"<pair key>": data, "last": ...}``; the key may differ from ours."""
    if not isinstance(result, Mapping):
        raise MalformedResponse(f"{what}: result is not an object")
    entries = [v for k, v in result.items() if k != "last"]
    if len(entries) != 1:
        raise MalformedResponse(f"{what}: expected one pair in the reply, got {len(entries)}")
    return entries[0]


def parse_ticker(result: Any, pair: str, now: datetime) -> Ticker:
    data = _only_entry(result, "Kraken Ticker")
    try:
        return Ticker(pair=pair, bid=dec(data["b"][0], what="bid"), ask=dec(data["a"][0], what="ask"),
                      last=dec(data["c"][0], what="last"), ts=now)
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedResponse("Kraken Ticker: missing a, b or c") from exc


def parse_depth(result: Any, pair: str, now: datetime) -> OrderBook:
    data = _only_entry(result, "Kraken Depth")
    try:
        bids = tuple((dec(p, what="bid"), dec(q, what="bid qty")) for p, q, *_ in data["bids"])
        asks = tuple((dec(p, what="ask"), dec(q, what="ask qty")) for p, q, *_ in data["asks"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedResponse("Kraken Depth: bad bids/asks") from exc
    return OrderBook(pair=pair, bids=bids, asks=asks, ts=now)


def parse_ohlc(result: Any, pair: str, timeframe_s: int) -> tuple[list[Candle], int | None]:
    """All rows (the last one is still running) and Kraken's ``last`` committed-candle time."""
    rows = _only_entry(result, "Kraken OHLC")
    last = result.get("last")
    try:
        candles = [
            Candle(pair=pair, timeframe_s=timeframe_s, ts=utc_from_epoch(row[0]), open=dec(row[1]),
                   high=dec(row[2]), low=dec(row[3]), close=dec(row[4]), volume=dec(row[6]))
            for row in rows
        ]
    except (IndexError, TypeError) as exc:
        raise MalformedResponse("Kraken OHLC: bad row") from exc
    return candles, int(last) if last is not None else None


def parse_balances(result: Any, symbols: KrakenSymbols) -> dict[str, Balance]:
    """``BalanceEx`` (``{"XXBT": {"balance": "1", "hold_trade": "0.2"}}``) or plain ``Balance``.

    Suffixed entries (``.S`` staked, ``.M``, ``.B`` bonded) cannot be traded and are left out;
    ``.F`` (auto-earn) balances can, and count toward their asset.
    """
    if not isinstance(result, Mapping):
        raise MalformedResponse("Kraken Balance: result is not an object")
    totals: dict[str, list[Decimal]] = {}
    for code, value in result.items():
        root, _, suffix = str(code).partition(".")
        if suffix and suffix != "F":
            continue
        if isinstance(value, Mapping):
            total = dec(value.get("balance", "0"), what="balance")
            held = dec_or_zero(value.get("hold_trade"), what="hold_trade")
        else:
            total, held = dec(value, what="balance"), Decimal(0)
        acc = totals.setdefault(symbols.asset(root), [Decimal(0), Decimal(0)])
        acc[0] += total
        acc[1] += held
    return {asset: Balance(currency=asset, total=t, available=t - h) for asset, (t, h) in totals.items()}
