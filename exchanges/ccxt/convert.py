"""ccxt's unified structures into ours, with ``Decimal`` at the boundary.

ccxt's Python classes hand out ``float`` for every amount and price. Each number is converted through
``str`` (``Decimal(str(x))``): Python's float repr is the shortest text that reads back as the same
float, so ``0.0001`` stays ``Decimal("0.0001")`` instead of the binary expansion
``Decimal(0.0001) = 0.000100000000000000004792...``. ccxt parses the venue's own strings to floats, so
prices and sizes of up to ~15 significant digits come through exactly; beyond that precision was
already lost inside ccxt.

Market rules: ccxt describes precision in one of three modes per exchange (``exchange.precisionMode``):
``TICK_SIZE`` (the number *is* the step, e.g. ``0.01``), ``DECIMAL_PLACES`` (``2`` means a step of
``0.01``) or ``SIGNIFICANT_DIGITS`` (the step depends on the magnitude; there is no fixed step). For the
last, the step here is the smallest one the digits allow at the market's minimum (documented in
docs/exchanges.md); the venue still refuses what it does not accept, which surfaces as ``InvalidOrder``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exchanges.base import Balance, Candle, Fill, Market, Order, OrderBook, OrderStatus, OrderType, Side, Ticker
from exchanges.errors import MalformedResponse

TICK_SIZE, DECIMAL_PLACES, SIGNIFICANT_DIGITS = 4, 2, 3  # ccxt's precision-mode constants
DEFAULT_STEP = Decimal("0.00000001")

_STATUS = {"open": OrderStatus.SUBMITTED, "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
           "cancelled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}


def dec(value: Any) -> Decimal | None:
    """A ccxt number (float, int or numeric string) as a Decimal via its text; None stays None."""
    if value is None or value == "":
        return None
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise MalformedResponse(f"not a number: {value!r}") from exc
    if not out.is_finite():
        raise MalformedResponse(f"not a finite number: {value!r}")
    return out


def dec0(value: Any) -> Decimal:
    return dec(value) or Decimal(0)


def utc_ms(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value) / 1000, UTC)


def step_from_precision(value: Any, mode: int) -> Decimal | None:
    """A precision value in the exchange's mode as a step (``0.01``); None when ccxt gives none."""
    number = dec(value)
    if number is None or number <= 0:
        return None
    if mode == TICK_SIZE:
        return number.normalize()
    places = int(number)
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-places)
    return None  # SIGNIFICANT_DIGITS: no fixed step


def _significant_step(digits: Any, reference: Decimal | None) -> Decimal | None:
    """With significant digits, the step at ``reference``: e.g. 5 digits at 0.0012 -> 0.0000001."""
    n = dec(digits)
    if n is None or reference is None or reference <= 0:
        return None
    return Decimal(1).scaleb(reference.adjusted() - int(n) + 1)


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    steps = (value / step).to_integral_value(rounding="ROUND_CEILING")
    return (steps * step).normalize()


def market(m: Mapping[str, Any], mode: int) -> Market | None:
    """Our :class:`Market` for one ccxt spot market; None for derivatives and inactive markets."""
    if not m.get("spot") or m.get("active") is False or not m.get("base") or not m.get("quote"):
        return None
    precision, limits = m.get("precision") or {}, m.get("limits") or {}
    min_amount = dec((limits.get("amount") or {}).get("min"))
    if mode == SIGNIFICANT_DIGITS:
        step = _significant_step(precision.get("amount"), min_amount) or DEFAULT_STEP
        tick = _significant_step(precision.get("price"), dec((limits.get("price") or {}).get("min"))) or DEFAULT_STEP
    else:
        step = step_from_precision(precision.get("amount"), mode) or DEFAULT_STEP
        tick = step_from_precision(precision.get("price"), mode) or DEFAULT_STEP
    # the minimum must itself be a whole number of steps (Market.round_qty(min_qty) == min_qty)
    min_qty = _ceil_to(max(min_amount or step, step), step)
    maker, taker = dec(m.get("maker")), dec(m.get("taker"))
    fees = {k: v for k, v in (("maker_fee", maker), ("taker_fee", taker)) if v is not None and 0 <= v < 1}
    return Market(pair=f"{m['base']}/{m['quote']}", base=str(m["base"]), quote=str(m["quote"]),
                  venue_symbol=str(m["symbol"]), min_qty=min_qty, qty_step=step, price_tick=tick,
                  min_notional=dec0((limits.get("cost") or {}).get("min")), **fees)


def pair_of(symbol: str) -> str:
    """Our ``BASE/QUOTE`` for a ccxt spot symbol (ccxt writes spot markets the same way)."""
    return symbol.split(":")[0]


def balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    totals, free = raw.get("total") or {}, raw.get("free") or {}
    out = {}
    for code, total in totals.items():
        amount = dec(total)
        if amount is None:
            continue
        available = dec(free.get(code))
        out[str(code)] = Balance(str(code), amount, amount if available is None else available)
    return out


def order(o: Mapping[str, Any], cid_for: Callable[[str], str | None], *, fallback_cid: str = "",
          echoed: bool = True) -> Order:
    """Our :class:`Order`. The client id is the one we remember for the venue id (``cid_for``), else the
    one the venue echoes (only when ``echoed``: where ccxt does not send ours, what it parses is the
    venue's own, e.g. Kraken's ``userref`` 0), else ``fallback_cid``, else the venue's order id."""
    venue_id = str(o.get("id") or "")
    cid = cid_for(venue_id) or (o.get("clientOrderId") if echoed else None) or fallback_cid or venue_id
    filled = dec0(o.get("filled"))
    status = _STATUS.get(str(o.get("status") or "open"), OrderStatus.SUBMITTED)
    if status is OrderStatus.SUBMITTED and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    fee = o.get("fee") or {}
    otype = OrderType.LIMIT if o.get("type") == "limit" else OrderType.MARKET
    return Order(client_order_id=str(cid), venue_order_id=venue_id, pair=pair_of(str(o.get("symbol") or "")),
                 side=Side(str(o.get("side") or "buy")), type=otype, qty=dec0(o.get("amount")), status=status,
                 filled_qty=filled, avg_price=dec(o.get("average")) if filled else None, fee=dec0(fee.get("cost")),
                 fee_currency=str(fee.get("currency") or ""),
                 limit_price=dec(o.get("price")) if otype is OrderType.LIMIT else None,
                 created_at=utc_ms(o.get("timestamp")),
                 reject_reason=str(o.get("status")) if status is OrderStatus.REJECTED else "")


def fill(t: Mapping[str, Any], cid: str) -> Fill:
    fee = t.get("fee") or {}
    ts = utc_ms(t.get("timestamp"))
    if ts is None or t.get("id") is None:
        raise MalformedResponse(f"trade without id or timestamp: {dict(t)!r}")
    return Fill(fill_id=str(t["id"]), client_order_id=cid, venue_order_id=str(t.get("order") or ""),
                pair=pair_of(str(t["symbol"])), side=Side(str(t["side"])), qty=dec0(t.get("amount")),
                price=dec0(t.get("price")), fee=dec0(fee.get("cost")), fee_currency=str(fee.get("currency") or ""),
                ts=ts, liquidity="maker" if t.get("takerOrMaker") == "maker" else "taker")


def ticker(pair: str, t: Mapping[str, Any], now: datetime) -> Ticker:
    last = dec(t.get("last")) or dec(t.get("close"))
    bid, ask = dec(t.get("bid")), dec(t.get("ask"))
    if bid is None or ask is None or last is None:
        raise MalformedResponse(f"{pair} ticker without bid, ask or last")
    return Ticker(pair=pair, bid=bid, ask=ask, last=last, ts=utc_ms(t.get("timestamp")) or now)


def order_book(pair: str, b: Mapping[str, Any], depth: int, now: datetime) -> OrderBook:
    def side(rows: Any) -> tuple[tuple[Decimal, Decimal], ...]:
        return tuple((dec0(r[0]), dec0(r[1])) for r in (rows or [])[:depth])

    return OrderBook(pair=pair, bids=side(b.get("bids")), asks=side(b.get("asks")),
                     ts=utc_ms(b.get("timestamp")) or now)


def candle(pair: str, timeframe_s: int, row: list[Any]) -> Candle:
    ts = utc_ms(row[0])
    if ts is None or len(row) < 6:
        raise MalformedResponse(f"{pair} OHLCV row {row!r}")
    o, h, low, c, v = (dec0(x) for x in row[1:6])
    return Candle(pair=pair, timeframe_s=timeframe_s, ts=ts, open=o, high=h, low=low, close=c, volume=v)
