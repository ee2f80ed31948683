"""The fast mode's inner loop: the engine's per-candle rules, visited only where something happens.

One candle in the engine (:meth:`core.trading.engine.Engine.on_candle`) is, for one pair: (1) the paper
venue matches the resting order at the candle's open; (2) protection checks the stop against the
low and the take-profit against the high; (3) the strategy's signal: SELL exits an open position,
BUY enters when there is none; an order placed with ``fill_on = last_close`` fills at once at the
close. :class:`Simulation` applies exactly these steps, in this order, but only on candles where one
of them can do anything: a candle with an order in flight, a candidate signal, or a protection
trigger found by a vectorized search. Everything else is skipped.

Prices, fees, liquidity and funds use the paper venue's own arithmetic
(:mod:`exchanges.paper.model`) in ``Decimal``; entry sizing is :func:`core.backtest.sizing.plain_entry`.
Situations this loop does not reproduce exactly are counted in :attr:`Simulation.inexact`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from core.backtest.data import Bars
from core.backtest.model import RunSpec
from core.backtest.sizing import plain_entry
from exchanges.base import Market, OrderStatus, OrderType, Side
from exchanges.paper.model import (
    PaperOrder,
    floor_to_step,
    market_headroom,
    quote_fee,
    reservation,
    slipped_price,
)

ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (direction, stop, take_profit) the engine would see at bar i, or None for HOLD.
Judge = Callable[[int], tuple[int, Decimal | None, Decimal | None] | None]


@dataclass(slots=True)
class Fill:
    bar: int
    qty: Decimal
    price: Decimal
    fee: Decimal


@dataclass(slots=True)
class Position:
    entries: list[Fill] = field(default_factory=list)
    exits: list[Fill] = field(default_factory=list)
    qty: Decimal = ZERO
    stop: Decimal | None = None
    take_profit: Decimal | None = None
    reason: str = ""

    @property
    def open(self) -> bool:
        return bool(self.entries)


@dataclass(slots=True)
class Venue:
    """Fill parameters, as the paper venue holds them."""

    market: Market
    slippage_bps: Decimal
    impact_bps: Decimal
    volume_share: Decimal

    @property
    def headroom(self) -> Decimal:
        return market_headroom(self.slippage_bps, self.impact_bps, self.volume_share)


class Simulation:
    def __init__(self, bars: Bars, spec: RunSpec, venue: Venue, *, cash: Decimal, base: Decimal,
                 buy_bars: np.ndarray, sell_bars: np.ndarray, judge: Judge, cooldown_s: int) -> None:
        self.bars, self.spec, self.v = bars, spec, venue
        self.m = venue.market
        self.cash, self.base = cash, base
        self.buy_bars, self.sell_bars = buy_bars, sell_bars
        self.judge = judge
        self.cooldown_s = cooldown_s
        self.at_close = spec.fill_on == "last_close"
        self.low, self.high = bars.arrays.low, bars.arrays.high
        self.ts = bars.arrays.ts
        self.tf = bars.timeframe_s
        self.pos: Position | None = None
        self.order: PaperOrder | None = None
        self.order_bar = -1
        self.liq_bar = -1
        self.liquidity = ZERO
        self.last_loss_close: int | None = None  # close time (epoch s) of the last losing exit
        self.closed: list[Position] = []
        self.inexact: dict[str, int] = {}

    # -- the walk --------------------------------------------------------------------------

    def run(self) -> None:
        n = len(self.bars)
        k = 1  # the engine scans from the second candle on
        while k < n:
            if self.order is None:
                k = self._next_event(k)
                if k >= n:
                    break
            self._candle(k)
            k += 1

    def _next_event(self, k: int) -> int:
        """The first candle at or after ``k`` where anything can happen, with no order in flight."""
        if self.pos is None:
            j = int(np.searchsorted(self.buy_bars, k))
            return int(self.buy_bars[j]) if j < self.buy_bars.size else len(self.bars)
        j = int(np.searchsorted(self.sell_bars, k))
        limit = int(self.sell_bars[j]) if j < self.sell_bars.size else len(self.bars)
        if self.pos.stop is None and self.pos.take_profit is None:
            return limit
        hit = np.zeros(limit - k, dtype=np.bool_)
        if self.pos.stop is not None:
            hit |= self.low[k:limit] <= float(self.pos.stop)
        if self.pos.take_profit is not None:
            hit |= self.high[k:limit] >= float(self.pos.take_profit)
        first = int(np.argmax(hit)) if hit.size else 0
        return k + first if hit.size and hit[first] else limit

    def _candle(self, k: int) -> None:
        if self.order is not None and self.order_bar < k:
            self._match(k, self.bars.price(k, "open"))
        pos = self.pos
        if pos is not None and pos.open and (pos.stop is not None or pos.take_profit is not None):
            low, high = self.bars.price(k, "low"), self.bars.price(k, "high")
            if pos.stop is not None and low <= pos.stop:
                self._exit(k, "stop")
            elif pos.take_profit is not None and high >= pos.take_profit:
                self._exit(k, "take_profit")
        judged = self.judge(k)
        if judged is None:
            return
        direction, stop, take_profit = judged
        pos = self.pos
        if direction < 0 and pos is not None and pos.open:
            self._exit(k, "exit")
        elif direction > 0 and pos is None:
            self._enter(k, stop, take_profit)

    # -- entries and exits -----------------------------------------------------------------

    def _enter(self, k: int, stop: Decimal | None, take_profit: Decimal | None) -> None:
        close = self.bars.price(k, "close")
        if self.last_loss_close is not None and self._close_ts(k) - self.last_loss_close < self.cooldown_s:
            return
        decision = plain_entry(sizing=self.spec.sizing, qty=self.spec.qty, fraction=self.spec.fraction, price=close,
                               equity=self.cash + self.base * close, cash=self.cash, market=self.m)
        if not decision.approved:
            return
        if not self._place(k, Side.BUY, decision.qty, close):
            return
        stop = stop if stop is not None and 0 < stop < close else None
        self.pos = Position(stop=self.m.round_price(stop) if stop is not None else None, take_profit=take_profit)
        if self.at_close:
            self._match(k, close)

    def _exit(self, k: int, purpose: str) -> None:
        pos = self.pos
        assert pos is not None
        if self.order is not None and self.order.side is Side.SELL:
            return  # the engine places no second exit while one is closing the position
        pos.reason = purpose  # the engine stamps the latest attempt, even one the venue refuses
        if self.order is not None:  # the engine would sell the part bought so far, alongside
            self._count("an exit came while the entry order was still filling")
            return
        qty = self.m.round_qty(pos.qty)
        if qty <= 0 or not self._place(k, Side.SELL, qty, self.bars.price(k, "close")):
            return
        if self.at_close:
            self._match(k, self.bars.price(k, "close"))

    def _place(self, k: int, side: Side, qty: Decimal, ref: Decimal) -> bool:
        """The paper venue's order checks; False where it would refuse the order."""
        m = self.m
        if qty < m.min_qty or qty % m.qty_step or qty * ref < m.min_notional:
            return False
        now = _EPOCH
        order = PaperOrder(client_order_id="", venue_order_id="", pair=m.pair, side=side, type=OrderType.MARKET,
                           qty=qty, ref_price=ref, status=OrderStatus.SUBMITTED, created_at=now, updated_at=now,
                           fee_currency=m.quote)
        needed = reservation(order, m, self.v.headroom)[1]
        if needed > (self.cash if side is Side.BUY else self.base):
            return False
        self.order, self.order_bar = order, k
        return True

    # -- matching --------------------------------------------------------------------------

    def _match(self, k: int, ref: Decimal) -> None:
        """Fill the order in flight at ``ref`` on candle ``k``, within that candle's liquidity."""
        order = self.order
        assert order is not None
        m, v = self.m, self.v
        volume = self.bars.volume(k)
        if self.liq_bar != k:
            self.liq_bar, self.liquidity = k, volume * v.volume_share
        qty = floor_to_step(min(order.remaining, self.liquidity), m.qty_step)
        if qty <= 0:
            return
        price = slipped_price(ref, order.side, qty, volume, slippage_bps=v.slippage_bps, impact_bps=v.impact_bps,
                              tick=m.price_tick)
        rate = m.taker_fee
        wanted = qty
        if order.side is Side.BUY:
            free = self.cash
            qty = min(qty, floor_to_step(free / (price * (1 + rate)), m.qty_step))
            while qty > 0 and qty * price + quote_fee(qty, price, rate) > free:
                qty -= m.qty_step
        else:
            free = self.base
            qty = min(qty, floor_to_step(free, m.qty_step))
        if qty > 0:
            fee = quote_fee(qty, price, rate)
            sign = 1 if order.side is Side.BUY else -1
            self.base += sign * qty
            self.cash -= sign * qty * price + fee
            order.record_fill(qty, price, fee, _EPOCH)
            self.liquidity -= qty
            self._book(k, order.side, Fill(k, qty, price, fee))
        if qty < wanted or reservation(order, m, v.headroom)[1] > (self.cash if order.side is Side.BUY else self.base):
            order.status = OrderStatus.CANCELLED
        if order.status.is_final:
            self._order_done()

    def _book(self, k: int, side: Side, fill: Fill) -> None:
        pos = self.pos
        assert pos is not None
        if side is Side.BUY:
            pos.entries.append(fill)
            pos.qty += fill.qty
            return
        pos.exits.append(fill)
        pos.qty -= fill.qty
        if pos.qty <= 0:
            self.closed.append(pos)
            self.pos = None
            cost = sum((f.qty * f.price + f.fee for f in pos.entries), ZERO)
            value = sum((f.qty * f.price - f.fee for f in pos.exits), ZERO)
            if value - cost < 0:
                self.last_loss_close = self._close_ts(k)

    def _order_done(self) -> None:
        order, self.order = self.order, None
        assert order is not None
        if order.side is Side.BUY and self.pos is not None and not self.pos.open:
            self.pos = None  # an entry that never filled: the engine voids its position

    # -- helpers ---------------------------------------------------------------------------

    def _close_ts(self, k: int) -> int:
        return int(self.ts[k]) + self.tf

    def _count(self, what: str) -> None:
        self.inexact[what] = self.inexact.get(what, 0) + 1
