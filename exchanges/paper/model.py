"""The paper venue's arithmetic, free of I/O: market rules, fill prices, fees and reserved funds.

Kept apart from :mod:`exchanges.paper.exchange` so the execution model can be read (and changed)
in one place:

- A market fill's price is the reference price moved against the taker by
  ``slippage_bps + impact_bps * qty / candle_volume`` basis points, then rounded to the tick
  *against* the taker (buys up, sells down). Impact is left out when the volume is unknown.
- Fees are ``qty * price * rate`` in the quote currency, rounded to :data:`FEE_QUANTUM`.
- A resting order reserves funds so that two orders can never spend the same money: a sell reserves
  its remaining base quantity; a buy reserves ``remaining * price * (1 + headroom) * (1 + fee)`` in
  quote, where ``price`` is the limit (limit orders) or the reference price at placement (market
  orders) and ``headroom`` covers the worst slippage a market order can get in one candle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from exchanges.base import Market, Order, OrderStatus, OrderType, Side

BPS = Decimal(10_000)
FEE_QUANTUM = Decimal("0.00000001")
ZERO = Decimal(0)


class FillOn(enum.StrEnum):
    """When a market order fills.

    ``LAST_CLOSE``: at once, at the last known price (the previous candle's close) plus slippage,
    like a live venue that fills against the current book. ``NEXT_OPEN``: when the next candle
    arrives, at its open plus slippage -- what a backtest uses so that a decision taken on a
    candle's close never trades at that same close.
    """

    LAST_CLOSE = "last_close"
    NEXT_OPEN = "next_open"


@dataclass(frozen=True, slots=True)
class MarketRules:
    """One pair's trading rules on the paper venue (defaults match the paper settings)."""

    min_qty: Decimal = Decimal("0.0001")
    qty_step: Decimal = Decimal("0.00000001")
    price_tick: Decimal = Decimal("0.01")
    min_notional: Decimal = Decimal("5")
    maker_fee: Decimal = Decimal("0.0016")
    taker_fee: Decimal = Decimal("0.0026")

    def __post_init__(self) -> None:
        if min(self.qty_step, self.price_tick) <= 0 or self.min_qty <= 0:
            raise ValueError("min_qty, qty_step and price_tick must be positive")
        if min(self.min_notional, self.maker_fee, self.taker_fee) < 0 or max(self.maker_fee, self.taker_fee) >= 1:
            raise ValueError("min_notional must be >= 0 and fees in [0, 1)")

    def market(self, pair: str) -> Market:
        base, sep, quote = pair.partition("/")
        if not (base and sep and quote):
            raise ValueError(f"pair must be written BASE/QUOTE, got {pair!r}")
        return Market(pair=pair, base=base, quote=quote, venue_symbol=base + quote, min_qty=self.min_qty,
                      qty_step=self.qty_step, price_tick=self.price_tick, min_notional=self.min_notional,
                      maker_fee=self.maker_fee, taker_fee=self.taker_fee)


def on_step(value: Decimal, step: Decimal) -> bool:
    return value % step == 0


def slipped_price(ref: Decimal, side: Side, qty: Decimal, volume: Decimal | None, *, slippage_bps: Decimal,
                  impact_bps: Decimal, tick: Decimal) -> Decimal:
    """A taker's fill price for ``qty`` against a candle that traded ``volume``."""
    bps = slippage_bps
    if volume is not None and volume > 0:
        bps += impact_bps * qty / volume
    if side is Side.BUY:
        return _to_tick(ref * (1 + bps / BPS), tick, ROUND_CEILING)
    return max(tick, _to_tick(ref * (1 - bps / BPS), tick, ROUND_FLOOR))


def quote_fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    return (qty * price * rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    if value <= 0:
        return ZERO
    return _to_tick(value, step, ROUND_FLOOR)


def _plain(value: Decimal) -> Decimal:
    """Drop trailing zeros without turning 20000 into 2E+4."""
    value = value.normalize()
    # exponent is a str only for NaN and infinity, which are never quantities or prices
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]


def _to_tick(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (value / tick).to_integral_value(rounding=rounding) * tick


@dataclass(slots=True)
class BalanceState:
    """One currency's balance; ``locked`` is derived from the open orders' reservations."""

    total: Decimal
    locked: Decimal = ZERO


@dataclass(slots=True)
class PaperOrder:
    """The mutable state of one paper order; mirrors a ``paper_orders`` row.

    ``ref_price`` is the price funds were reserved at: the limit for limit orders, the last price
    at placement for market orders. It is stored in the row's ``limit_price`` column for market
    orders (which have no limit of their own) so that a restart can recompute reservations exactly;
    :meth:`to_order` never shows it as a limit.
    """

    client_order_id: str
    venue_order_id: str
    pair: str
    side: Side
    type: OrderType
    qty: Decimal
    ref_price: Decimal
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    fee_currency: str
    filled_qty: Decimal = ZERO
    filled_cost: Decimal = ZERO
    fee: Decimal = ZERO
    reject_reason: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def limit_price(self) -> Decimal | None:
        return self.ref_price if self.type is OrderType.LIMIT else None

    def to_order(self) -> Order:
        avg = _plain(self.filled_cost / self.filled_qty) if self.filled_qty else None
        return Order(client_order_id=self.client_order_id, venue_order_id=self.venue_order_id, pair=self.pair,
                     side=self.side, type=self.type, qty=self.qty, status=self.status, filled_qty=self.filled_qty,
                     avg_price=avg, fee=self.fee, fee_currency=self.fee_currency, limit_price=self.limit_price,
                     created_at=self.created_at, reject_reason=self.reject_reason)

    def record_fill(self, qty: Decimal, price: Decimal, fee: Decimal, now: datetime) -> None:
        self.filled_qty += qty
        self.filled_cost += qty * price
        self.fee += fee
        self.status = OrderStatus.FILLED if self.remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        self.updated_at = now


def market_headroom(slippage_bps: Decimal, impact_bps: Decimal, volume_share: Decimal) -> Decimal:
    """Worst price move against a market order within one candle, as a fraction."""
    return (slippage_bps + impact_bps * volume_share) / BPS


def reservation(order: PaperOrder, market: Market, headroom: Decimal) -> tuple[str, Decimal]:
    """``(currency, amount)`` an open order holds back from the available balance."""
    if order.status.is_final or order.remaining <= 0:
        return (market.base if order.side is Side.SELL else market.quote), ZERO
    if order.side is Side.SELL:
        return market.base, order.remaining
    fee_rate = max(market.maker_fee, market.taker_fee)
    pad = headroom if order.type is OrderType.MARKET else ZERO
    return market.quote, order.remaining * order.ref_price * (1 + pad) * (1 + fee_rate)
