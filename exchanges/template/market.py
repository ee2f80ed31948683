"""The *other side* of the template venue: an in-memory exchange standing where a real venue's API is.

:class:`TemplateMarket` keeps books the way a venue does (balances, orders, fills, candles, a last
price) and speaks its own small language: it refuses with :class:`MarketRefusal` codes rather than our
exceptions, so the adapter has something to translate, as a real one translates HTTP answers.

When you copy the template for a real venue, this module goes: in production the venue's servers play
this part, and in tests a fake server on loopback does (see ``tests/exchanges/fakes/``). Until then the
contract suite drives it as its controller (``set_price``, ``set_balance``, ``add_candle``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from exchanges.base import Candle, Fill, Market, Order, OrderRequest, OrderStatus, OrderType, Side, Ticker
from exchanges.errors import ExchangeError

__all__ = ["MarketRefusal", "TemplateMarket"]


class MarketRefusal(ExchangeError):
    """The market's own "no", with its own code (``UNKNOWN_PAIR``, ``INSUFFICIENT_FUNDS``,
    ``UNKNOWN_ORDER``). Kept as the ``__cause__`` of the translated error, never seen above the adapter."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


@dataclass(slots=True)
class _Resting:
    order: Order
    hold_currency: str
    hold: Decimal


class TemplateMarket:
    """Fills market orders at the last price (taker fee), rests limit orders until the price crosses
    them (filled at the limit, maker fee), holds the funds a resting order needs; fees in the quote."""

    def __init__(self, markets: dict[str, Market]) -> None:
        self.markets = markets
        self._totals: dict[str, Decimal] = defaultdict(Decimal)
        self._prices: dict[str, Decimal] = {}
        self._orders: dict[str, Order] = {}
        self._resting: dict[str, _Resting] = {}
        self._fills: list[Fill] = []
        self._candles: dict[tuple[str, int], dict[datetime, Candle]] = defaultdict(dict)
        self._ids = itertools.count(1)
        self.updates: asyncio.Queue[Candle | Ticker] = asyncio.Queue()

    # -- levers (the contract suite's controller) ---------------------------------------------------------

    async def set_price(self, pair: str, price: Decimal) -> None:
        self._prices[pair] = Decimal(price)
        for cid, resting in list(self._resting.items()):
            order = resting.order
            if order.pair == pair and _crossed(order, self._prices[pair]):
                del self._resting[cid]
                assert order.limit_price is not None
                self._fill(order, order.limit_price, self.markets[pair].maker_fee, "maker")
        self.updates.put_nowait(self.ticker(pair))

    def set_balance(self, currency: str, amount: Decimal) -> None:
        self._totals[currency] = Decimal(amount)

    def add_candle(self, pair: str, timeframe_s: int, ts: datetime, o: Decimal, h: Decimal, low: Decimal,
                   c: Decimal, v: Decimal) -> None:
        candle = Candle(pair=pair, timeframe_s=timeframe_s, ts=ts, open=o, high=h, low=low, close=c, volume=v)
        self._candles[(pair, timeframe_s)][ts] = candle
        self.updates.put_nowait(candle)

    # -- the venue's API ----------------------------------------------------------------------------------

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``currency -> (total, held by resting orders)``."""
        held: dict[str, Decimal] = defaultdict(Decimal)
        for r in self._resting.values():
            held[r.hold_currency] += r.hold
        return {cur: (total, held[cur]) for cur, total in self._totals.items()}

    def place(self, request: OrderRequest) -> Order:
        if request.client_order_id in self._orders:
            return self._orders[request.client_order_id]
        market = self.markets.get(request.pair)
        if market is None:
            raise MarketRefusal("UNKNOWN_PAIR", request.pair)
        price = self._prices.get(request.pair)
        if price is None:
            raise MarketRefusal("NO_PRICE", f"{request.pair} has no price yet")
        order = Order(client_order_id=request.client_order_id, venue_order_id=f"T{next(self._ids)}",
                      pair=request.pair, side=request.side, type=request.type, qty=request.qty,
                      status=OrderStatus.SUBMITTED, limit_price=request.limit_price, created_at=datetime.now(UTC))
        taker = request.type is OrderType.MARKET or _crossed(order, price)
        at, fee_rate = (price, market.taker_fee) if taker else (request.limit_price or price, market.maker_fee)
        if request.side is Side.BUY:
            currency, need = market.quote, request.qty * at * (1 + fee_rate)
        else:
            currency, need = market.base, request.qty
        total, held = self.balances().get(currency, (Decimal(0), Decimal(0)))
        if total - held < need:
            raise MarketRefusal("INSUFFICIENT_FUNDS", f"{need} {currency} needed, {total - held} free")
        self._orders[order.client_order_id] = order
        if taker:
            return self._fill(order, price, fee_rate, "taker")
        self._resting[order.client_order_id] = _Resting(order, currency, need)
        return order

    def order(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    def open_orders(self) -> list[Order]:
        return [r.order for r in self._resting.values()]

    def cancel(self, client_order_id: str) -> Order:
        order = self._orders.get(client_order_id)
        if order is None:
            raise MarketRefusal("UNKNOWN_ORDER", client_order_id)
        if self._resting.pop(client_order_id, None) is not None:
            order = self._orders[client_order_id] = replace(order, status=OrderStatus.CANCELLED)
        return order

    def fills(self, after: int, limit: int) -> list[Fill]:
        """Fills in execution order, from position ``after`` (the venue's cursor is a position)."""
        return self._fills[after:after + limit]

    def ticker(self, pair: str) -> Ticker:
        last = self._price(pair)
        tick = self.markets[pair].price_tick
        return Ticker(pair=pair, bid=last - tick, ask=last + tick, last=last, ts=datetime.now(UTC))

    def book(self, pair: str, depth: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """A synthetic book around the last price: one unit of liquidity per tick, ``depth`` levels a side."""
        last, tick = self._price(pair), self.markets[pair].price_tick
        bids = [(last - tick * k, Decimal(1)) for k in range(1, depth + 1)]
        asks = [(last + tick * k, Decimal(1)) for k in range(1, depth + 1)]
        return bids, asks

    def candles(self, pair: str, timeframe_s: int) -> list[Candle]:
        if pair not in self.markets:
            raise MarketRefusal("UNKNOWN_PAIR", pair)
        return [c for _, c in sorted(self._candles[(pair, timeframe_s)].items())]

    # -- inside ---------------------------------------------------------------------------------------------

    def _price(self, pair: str) -> Decimal:
        if pair not in self.markets:
            raise MarketRefusal("UNKNOWN_PAIR", pair)
        if pair not in self._prices:
            raise MarketRefusal("NO_PRICE", f"{pair} has no price yet")
        return self._prices[pair]

    def _fill(self, order: Order, price: Decimal, fee_rate: Decimal, liquidity: str) -> Order:
        market = self.markets[order.pair]
        notional = order.qty * price
        fee = notional * fee_rate
        sign = 1 if order.side is Side.BUY else -1
        self._totals[market.base] += sign * order.qty
        self._totals[market.quote] -= sign * notional + fee
        self._fills.append(Fill(fill_id=f"F{len(self._fills) + 1}", client_order_id=order.client_order_id,
                                venue_order_id=order.venue_order_id, pair=order.pair, side=order.side, qty=order.qty,
                                price=price, fee=fee, fee_currency=market.quote, ts=datetime.now(UTC),
                                liquidity=liquidity))
        filled = replace(order, status=OrderStatus.FILLED, filled_qty=order.qty, avg_price=price, fee=fee,
                         fee_currency=market.quote)
        self._orders[order.client_order_id] = filled
        return filled


def _crossed(order: Order, price: Decimal) -> bool:
    if order.type is OrderType.MARKET or order.limit_price is None:
        return True
    return price <= order.limit_price if order.side is Side.BUY else price >= order.limit_price
