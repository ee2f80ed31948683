"""The paper venue's account and matching, in memory: no I/O and no awaiting.

:class:`~exchanges.paper.exchange.PaperExchange` calls into a :class:`PaperBook` under its lock and
writes whatever changed to the database afterwards; keeping this part synchronous means a change is
never half-applied while another call runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TypeVar

from exchanges.base import Candle, Fill, Market, OrderBook, OrderRequest, OrderStatus, OrderType, Side, Ticker
from exchanges.clock import Clock
from exchanges.errors import InsufficientFunds, InvalidOrder, TemporaryError, UnknownPair
from exchanges.paper.model import (
    BPS,
    ZERO,
    BalanceState,
    MarketRules,
    PaperOrder,
    floor_to_step,
    market_headroom,
    on_step,
    quote_fee,
    reservation,
    slipped_price,
)

log = logging.getLogger("tradectl.paper")
V = TypeVar("V")
Snapshot = dict[str, tuple[Decimal, Decimal]]
Cursor = tuple[datetime, Decimal]  # (open time of the last candle matched, its liquidity left)
MarketState = tuple[datetime | None, Decimal | None, Decimal | None, tuple[Decimal, datetime] | None]


class PaperBook:
    def __init__(self, markets: dict[str, Market], *, slippage_bps: Decimal, impact_bps: Decimal,
                 volume_share: Decimal, clock: Clock, history: int, limit_through: bool = False) -> None:
        self.markets = markets
        self.limit_through = limit_through
        self.slippage_bps, self.impact_bps, self.volume_share = slippage_bps, impact_bps, volume_share
        self.headroom = market_headroom(slippage_bps, impact_bps, volume_share)
        self.clock = clock
        self.balances: dict[str, BalanceState] = {}
        self.open: dict[str, PaperOrder] = {}
        self.marks: dict[str, tuple[Decimal, datetime]] = {}
        self.quotes: dict[str, tuple[Decimal, Decimal]] = {}  # best bid and ask, from a live feed's tickers
        self.volume: dict[str, Decimal] = {}
        self.liquidity: dict[str, Decimal] = {}
        self.history: dict[str, deque[Candle]] = {pair: deque(maxlen=history) for pair in markets}
        self.matched: dict[str, Cursor] = {}  # per pair, as last stored: see on_candle

    # -- state -------------------------------------------------------------------------------

    def reset(self, balances: dict[str, BalanceState], orders: list[PaperOrder]) -> None:
        """Replace the account with what the database holds (market data is kept)."""
        self.balances = balances
        self.open = {o.client_order_id: o for o in orders}
        self.recompute_locks()

    def snapshot(self) -> Snapshot:
        return {c: (b.total, b.locked) for c, b in self.balances.items()}

    def changed_since(self, before: Snapshot) -> dict[str, BalanceState]:
        return {c: b for c, b in self.balances.items() if before.get(c) != (b.total, b.locked)}

    def balance(self, currency: str) -> BalanceState:
        return self.balances.setdefault(currency, BalanceState(ZERO, ZERO))

    def recompute_locks(self) -> None:
        """Reservations are derived from the open orders, never accumulated, so they cannot drift."""
        locked: dict[str, Decimal] = {}
        for order in self.open.values():
            market = self.markets.get(order.pair) or MarketRules().market(order.pair)
            currency, amount = reservation(order, market, self.headroom)
            locked[currency] = locked.get(currency, ZERO) + amount
        for currency in set(locked) | set(self.balances):
            self.balance(currency).locked = locked.get(currency, ZERO)

    # -- market data -------------------------------------------------------------------------

    def market(self, pair: str) -> Market:
        market = self.markets.get(pair)
        if market is None:
            raise UnknownPair(f"the paper venue does not trade {pair!r}")
        return market

    def mark(self, pair: str) -> tuple[Decimal, datetime]:
        mark = self.marks.get(pair)
        if mark is None:
            raise TemporaryError(f"no price for {pair} yet: the paper venue has not been fed any market data")
        return mark

    def ticker(self, pair: str) -> Ticker:
        market = self.market(pair)
        last, ts = self.mark(pair)
        quote = self.quotes.get(pair)
        if quote is not None:
            return Ticker(pair=pair, bid=quote[0], ask=quote[1], last=last, ts=ts)
        return Ticker(pair=pair, bid=self._slipped(last, Side.SELL, ZERO, market),
                      ask=self._slipped(last, Side.BUY, ZERO, market), last=last, ts=ts)

    def order_book(self, pair: str, depth: int) -> OrderBook:
        market = self.market(pair)
        last, ts = self.mark(pair)
        volume = self.volume.get(pair)
        levels = max(1, depth)
        size = floor_to_step(volume * self.volume_share / levels, market.qty_step) if volume else ZERO
        bids, asks = [], []
        for i in range(levels):
            move = (self.slippage_bps + self.impact_bps * self.volume_share * i / levels) / BPS
            asks.append((_tick(last * (1 + move), market, ROUND_CEILING), size))
            bids.append((_tick(last * (1 - move), market, ROUND_FLOOR), size))
        return OrderBook(pair=pair, bids=tuple(b for b in bids if b[0] > 0), asks=tuple(asks), ts=ts)

    # -- orders ------------------------------------------------------------------------------

    def new_order(self, request: OrderRequest) -> PaperOrder:
        """Validate a request against the market's rules and the available funds."""
        market = self.market(request.pair)
        qty = request.qty
        if qty <= 0:
            raise InvalidOrder(f"qty must be positive, got {qty}")
        if not on_step(qty, market.qty_step):
            raise InvalidOrder(f"qty {qty} is not a multiple of the step {market.qty_step}")
        if qty < market.min_qty:
            raise InvalidOrder(f"qty {qty} is below the minimum {market.min_qty} for {market.pair}")
        if request.type is OrderType.LIMIT:
            if request.limit_price is None or request.limit_price <= 0:
                raise InvalidOrder("a limit order needs a positive limit price")
            if not on_step(request.limit_price, market.price_tick):
                raise InvalidOrder(f"limit price {request.limit_price} is not a multiple of the tick "
                                   f"{market.price_tick}")
            ref = request.limit_price
        elif request.limit_price is not None:
            raise InvalidOrder("a market order takes no limit price")
        else:
            ref = self.reference(market.pair, request.side)
        if qty * ref < market.min_notional:
            raise InvalidOrder(f"order value {qty * ref} {market.quote} is below the minimum {market.min_notional}")
        now = self.clock.now()
        order = PaperOrder(client_order_id=request.client_order_id, venue_order_id=_order_id(), pair=market.pair,
                           side=request.side, type=request.type, qty=qty, ref_price=ref, status=OrderStatus.SUBMITTED,
                           created_at=now, updated_at=now, fee_currency=market.quote)
        currency, needed = reservation(order, market, self.headroom)
        bal = self.balances.get(currency, BalanceState(ZERO, ZERO))
        if needed > bal.total - bal.locked:
            raise InsufficientFunds(f"{request.side.value} {qty} {market.pair} needs {needed.normalize():f} "
                                    f"{currency}, {(bal.total - bal.locked).normalize():f} available")
        return order

    def add(self, order: PaperOrder, *, fill_now: bool) -> list[Fill]:
        """Accept a validated order; with ``fill_now`` a marketable order fills at the last price."""
        self.open[order.client_order_id] = order
        self.recompute_locks()
        if not (fill_now and self._marketable(order)):
            return []
        market = self.markets[order.pair]
        qty = self._fillable(order, market)
        if qty <= 0:
            return []
        price = self._slipped(self.reference(order.pair, order.side), order.side, qty, market)
        if order.type is OrderType.LIMIT:
            price = min(price, order.ref_price) if order.side is Side.BUY else max(price, order.ref_price)
        fill = self._fill(order, market, qty, price, "taker")
        return [fill] if fill else []

    def cancel(self, order: PaperOrder) -> None:
        order.status, order.updated_at = OrderStatus.CANCELLED, self.clock.now()
        self.open.pop(order.client_order_id, None)
        self.recompute_locks()

    def cursor(self, pair: str) -> Cursor | None:
        """The pair's last candle and the liquidity it has left: stored with every change it
        caused, so matching is idempotent per candle across restarts (see :meth:`on_candle`)."""
        history = self.history.get(pair)
        if not history:
            return None
        return history[-1].ts, self.liquidity.get(pair, ZERO)

    def market_state(self, pair: str) -> MarketState:
        history = self.history.get(pair)
        last = history[-1].ts if history else None
        return (last, self.volume.get(pair), self.liquidity.get(pair), self.marks.get(pair))

    def restore_market(self, pair: str, state: MarketState) -> None:
        """Forget a candle whose effects could not be stored, so that it is matched again."""
        last, volume, liquidity, mark = state
        history = self.history.get(pair)
        while history and (last is None or history[-1].ts > last):
            history.pop()
        _put(self.volume, pair, volume)
        _put(self.liquidity, pair, liquidity)
        _put(self.marks, pair, mark)

    def on_candle(self, candle: Candle) -> tuple[list[PaperOrder], list[Fill]] | None:
        """Match the pair's resting orders against a new candle; None when the candle is not new.

        A candle the stored cursor (:attr:`matched`) says was already matched -- the process died
        after storing its fills but before its consumer moved on, and the candle is fed again --
        only sets the price and the liquidity it had left: its fills are never made twice.
        """
        pair = candle.pair
        history = self.history.get(pair)
        if history is None or (history and candle.ts <= history[-1].ts):
            return None
        history.append(candle)
        self.volume[pair] = candle.volume
        self.liquidity[pair] = candle.volume * self.volume_share
        done = self.matched.get(pair)
        if done is not None and candle.ts <= done[0]:
            if candle.ts == done[0]:
                self.liquidity[pair] = done[1]
            self.marks[pair] = (candle.close, candle.ts + timedelta(seconds=candle.timeframe_s))
            return [], []
        market = self.markets[pair]
        touched: list[PaperOrder] = []
        fills: list[Fill] = []
        for order in [o for o in self.open.values() if o.pair == pair]:
            qty = self._fillable(order, market)
            if qty <= 0:
                continue
            if order.type is OrderType.MARKET:
                fill = self._fill(order, market, qty, self._slipped(candle.open, order.side, qty, market), "taker")
            elif self._crossed(order, candle.low if order.side is Side.BUY else candle.high):
                fill = self._fill(order, market, qty, order.ref_price, "maker")
            else:
                continue
            touched.append(order)
            fills.extend([fill] if fill else [])
        end = candle.ts + timedelta(seconds=candle.timeframe_s)
        if pair not in self.marks or self.marks[pair][1] <= end:  # a live ticker after the candle is newer
            self.marks[pair] = (candle.close, end)
        return touched, fills

    def on_ticker(self, ticker: Ticker) -> tuple[list[PaperOrder], list[Fill]]:
        """A live quote: the new last price and best bid/ask, then the pair's resting orders matched.

        Market orders still waiting fill at the ask (buys) or bid (sells) plus slippage, limits fill
        at their limit when the last trade went through them; both within the liquidity the last
        candle left (a ticker carries no traded volume of its own).
        """
        pair = ticker.pair
        if pair not in self.markets:
            return [], []
        self.marks[pair] = (ticker.last, ticker.ts)
        if 0 < ticker.bid <= ticker.ask:
            self.quotes[pair] = (ticker.bid, ticker.ask)
        market = self.markets[pair]
        touched: list[PaperOrder] = []
        fills: list[Fill] = []
        for order in [o for o in self.open.values() if o.pair == pair]:
            qty = self._fillable(order, market)
            if qty <= 0:
                continue
            if order.type is OrderType.MARKET:
                price = self._slipped(self.reference(pair, order.side), order.side, qty, market)
                fill = self._fill(order, market, qty, price, "taker")
            elif self._crossed(order, ticker.last):
                fill = self._fill(order, market, qty, order.ref_price, "maker")
            else:
                continue
            touched.append(order)
            fills.extend([fill] if fill else [])
        return touched, fills

    # -- matching ----------------------------------------------------------------------------

    def reference(self, pair: str, side: Side) -> Decimal:
        """The price a taker trades against: the best ask (buy) or bid (sell) when a live feed
        quotes the pair, else the last price."""
        quote = self.quotes.get(pair)
        if quote is not None:
            return quote[1] if side is Side.BUY else quote[0]
        return self.mark(pair)[0]

    def _crossed(self, order: PaperOrder, price: Decimal) -> bool:
        """Whether a trade at ``price`` reaches a resting limit: touching it, or (``limit_through``)
        going through it, which is what a live feed's paper venue asks for."""
        if order.side is Side.BUY:
            return price < order.ref_price if self.limit_through else price <= order.ref_price
        return price > order.ref_price if self.limit_through else price >= order.ref_price

    def _marketable(self, order: PaperOrder) -> bool:
        if order.type is OrderType.MARKET:
            return True
        if order.pair not in self.marks:
            return False
        ref = self.reference(order.pair, order.side)
        return order.ref_price >= ref if order.side is Side.BUY else order.ref_price <= ref

    def _fillable(self, order: PaperOrder, market: Market) -> Decimal:
        left = self.liquidity.get(order.pair)
        return floor_to_step(order.remaining if left is None else min(order.remaining, left), market.qty_step)

    def _slipped(self, ref: Decimal, side: Side, qty: Decimal, market: Market) -> Decimal:
        return slipped_price(ref, side, qty, self.volume.get(market.pair), slippage_bps=self.slippage_bps,
                             impact_bps=self.impact_bps, tick=market.price_tick)

    def _fill(self, order: PaperOrder, market: Market, qty: Decimal, price: Decimal, liquidity: str) -> Fill | None:
        """Execute ``qty`` at ``price``, capped by what the account can pay for or deliver.

        An order the account can no longer pay for (a market buy whose later candles opened far
        above its reference price) fills what it can and is cancelled for the rest, so that the
        available balance never goes negative.
        """
        rate = market.maker_fee if liquidity == "maker" else market.taker_fee
        currency, own = reservation(order, market, self.headroom)
        bal = self.balance(currency)
        others = bal.locked - own
        free = bal.total - others
        wanted = qty
        if order.side is Side.BUY:
            qty = min(qty, floor_to_step(free / (price * (1 + rate)), market.qty_step))
            while qty > 0 and qty * price + quote_fee(qty, price, rate) > free:
                qty -= market.qty_step
        else:
            qty = min(qty, floor_to_step(free, market.qty_step))
        now = self.clock.now()
        fill = None
        if qty > 0:
            fee = quote_fee(qty, price, rate)
            sign = 1 if order.side is Side.BUY else -1
            self.balance(market.base).total += sign * qty
            self.balance(market.quote).total -= sign * qty * price + fee
            order.record_fill(qty, price, fee, now)
            if order.pair in self.liquidity:
                self.liquidity[order.pair] -= qty
            fill = Fill(fill_id=uuid.uuid4().hex, client_order_id=order.client_order_id,
                        venue_order_id=order.venue_order_id, pair=order.pair, side=order.side, qty=qty, price=price,
                        fee=fee, fee_currency=market.quote, ts=now, liquidity=liquidity)
        unaffordable = qty < wanted or reservation(order, market, self.headroom)[1] > bal.total - others
        if unaffordable and not order.status.is_final:
            order.status, order.updated_at = OrderStatus.CANCELLED, now
            order.reject_reason = "insufficient funds for the rest of the order"
            log.info("paper order %s cancelled: %s", order.client_order_id, order.reject_reason)
        if order.status.is_final:
            self.open.pop(order.client_order_id, None)
        self.recompute_locks()
        return fill


def _tick(value: Decimal, market: Market, rounding: str) -> Decimal:
    return (value / market.price_tick).to_integral_value(rounding=rounding) * market.price_tick


def _order_id() -> str:
    """Unique, and sorting in creation order among orders placed at the same simulated instant."""
    return f"{time.time_ns():016x}{uuid.uuid4().hex[:16]}"


def _put(table: dict[str, V], pair: str, value: V | None) -> None:
    """Set ``table[pair]``, or forget it when ``value`` is None."""
    if value is None:
        table.pop(pair, None)
    else:
        table[pair] = value
