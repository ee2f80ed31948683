"""The fast mode's shortcut for the common case: whole fills, fixed size, a signal-only strategy.

When every order fills completely in one candle and the size never changes, a backtest is a walk
over the signal candles alone: enter at the first BUY while flat, fill at the next candle that has
liquidity, leave at the first SELL from the fill on, fill again, repeat. That walk is a few float
operations per *trade*, not per candle.

It is the general loop (:mod:`core.backtest.fastloop`) with everything that cannot happen in this
case taken out, not a second set of rules. Every decision that depends on money (can the account pay,
is the order above the venue minimum, was the trade a loss for the cool-down, does the candle's
volume cover the order) is taken in floats only when it is clear by a wide margin; anything close
to a boundary returns ``None`` and the caller runs the general loop in ``Decimal`` instead. Exact
prices and fees are computed afterwards from the fill candles, in ``Decimal``, by
:func:`core.backtest.fast.price_fills` with the paper venue's functions.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np

MARGIN = 1e-7  # relative distance from a boundary below which floats do not decide


@dataclass(frozen=True, slots=True)
class LaneInputs:
    buys: np.ndarray  # candidate candles, ascending
    sells: np.ndarray
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    close_ts: np.ndarray
    qty: float
    cash: float
    taker_fee: float
    max_fee: float
    slippage_bps: float
    impact_bps: float
    volume_share: float
    qty_step: float
    price_tick: float
    min_notional: float
    cooldown_s: int
    exact_pnl: Callable[[int, int], Decimal]  # a round trip's PnL in Decimal, when floats cannot tell its sign
    exact_price: Callable[[int, int], float]  # a fill price at (candle, +1 buy / -1 sell), from Decimal


@dataclass(frozen=True, slots=True)
class LaneResult:
    """Fill candles and (float) fill prices of each round trip, in order.

    ``entries`` may be one longer than ``exits``: that position is still open at the end.
    ``unfilled_at_end``: an entry was placed on the last candle and never filled.
    """

    entries: list[int]
    exits: list[int]
    buy_prices: list[float]
    sell_prices: list[float]
    unfilled_at_end: bool


def _clear(value: float, limit: float) -> bool | None:
    """``value <= limit`` when clear by the margin, None when too close to call."""
    if value <= limit * (1 - MARGIN):
        return True
    if value >= limit * (1 + MARGIN):
        return False
    return None


def _fill_prices(ref: np.ndarray, volume: np.ndarray, bars: np.ndarray, inp: LaneInputs,
                 sign: int) -> list[float]:
    """Fill prices (rounded to the tick against the taker), equal to ``float`` of the exact ones.

    Without slippage a price already on the tick is the fill price, and whether it is on the tick
    is decided exactly in floats. Otherwise the price is rounded up (buys) or down (sells) to the
    tick; where it lies so close to a tick that float rounding could tip it, the exact ``Decimal``
    price is asked for instead (rare: about once in a million fills).
    """
    tick = inp.price_tick
    per_unit = round(1 / tick)
    whole = per_unit > 0 and abs(per_unit * tick - 1) < 1e-12  # ticks per unit: 100 for cents
    if inp.slippage_bps == 0 and inp.impact_bps == 0 and whole and (np.rint(ref * per_unit) / per_unit == ref).all():
        exact: list[float] = ref.tolist()
        return exact
    impact = np.divide(inp.impact_bps * inp.qty, volume, out=np.zeros_like(volume), where=volume > 0)
    ticks = ref * (1 + sign * (inp.slippage_bps + impact) / 10_000) / tick
    gap = np.abs(ticks - np.round(ticks))
    unsure = gap <= np.maximum(1e-9, 1e-12 * np.abs(ticks)) if whole else np.ones(ticks.shape, dtype=np.bool_)
    rounded = np.maximum(np.ceil(ticks) if sign > 0 else np.floor(ticks), 1.0)
    out: list[float] = (rounded / per_unit if whole else rounded * tick).tolist()  # n / 100: the float nearest n cents
    for i in np.flatnonzero(unsure).tolist():
        out[i] = inp.exact_price(int(bars[i]), sign)
    return out


class _Side(NamedTuple):
    """Everything the walk reads about the candidates of one side, as plain lists (one per candidate)."""

    bar: list[int]
    close: list[float]
    close_ts: list[int]
    fill: list[int]  # the candle the order fills on (n: never)
    full: list[bool]  # filled whole there
    price: list[float]
    fill_close_ts: list[int]


def _side(bars_at: np.ndarray, inp: LaneInputs, next_fill: np.ndarray, full: np.ndarray, sign: int) -> _Side:
    """The candidates of one side, gathered in one go."""
    n = inp.open.shape[0]
    fill = next_fill[bars_at + 1]
    at = np.minimum(fill, n - 1)
    return _Side(bar=bars_at.tolist(), close=inp.close[bars_at].tolist(), close_ts=inp.close_ts[bars_at].tolist(),
                 fill=fill.tolist(), full=(full[at] & (fill < n)).tolist(),
                 price=_fill_prices(inp.open[at], inp.volume[at], at, inp, sign),
                 fill_close_ts=inp.close_ts[at].tolist())


def walk(inp: LaneInputs) -> LaneResult | None:
    """The round trips, or None when the general loop is needed (see the module docstring)."""
    n = inp.open.shape[0]
    liq = inp.volume * inp.volume_share
    full = liq >= inp.qty * (1 + MARGIN)
    fillable = np.where(liq >= inp.qty_step * (1 - MARGIN), np.arange(n), n)  # else it fills nothing
    next_fill = np.r_[np.minimum.accumulate(fillable[::-1])[::-1], n]
    buys, sells = _side(inp.buys, inp, next_fill, full, 1), _side(inp.sells, inp, next_fill, full, -1)
    b_bar, b_close, b_ts, b_fill, b_full, b_price = (
        buys.bar, buys.close, buys.close_ts, buys.fill, buys.full, buys.price)
    s_bar, s_close, s_fill, s_full, s_price, s_fill_ts = (
        sells.bar, sells.close, sells.fill, sells.full, sells.price, sells.fill_close_ts)
    qty, fee, cooldown, min_notional = inp.qty, inp.taker_fee, inp.cooldown_s, inp.min_notional
    cash = inp.cash
    entry_cost = qty * (1 + 2 * fee)
    reserve = qty * (1 + (inp.slippage_bps + inp.impact_bps * inp.volume_share) / 10_000) * (1 + inp.max_fee)
    out = LaneResult([], [], [], [], False)
    last_loss: int | None = None
    k = 1
    nb, ns = len(b_bar), len(s_bar)
    while True:
        bi = bisect_left(b_bar, k)
        if bi >= nb:
            return out
        k = b_bar[bi] + 1
        if last_loss is not None and b_ts[bi] - last_loss < cooldown:
            continue
        price = b_close[bi]
        checks = (_clear(entry_cost * price, cash), _clear(reserve * price, cash),
                  _clear(min_notional, qty * price))
        if None in checks:
            return None
        if not all(checks):
            continue  # refused by the sizing rule or the venue: nothing happens, the scan goes on
        f = b_fill[bi]
        if f >= n:
            return LaneResult(out.entries, out.exits, out.buy_prices, out.sell_prices, True)
        if not b_full[bi]:
            return None
        buy = b_price[bi]
        paid = qty * buy * (1 + fee)
        if _clear(paid, cash) is not True:
            return None
        out.entries.append(f)
        out.buy_prices.append(buy)
        si = bisect_left(s_bar, f)
        if si >= ns or s_fill[si] >= n:
            return out
        if _clear(min_notional, qty * s_close[si]) is not True or not s_full[si]:
            return None
        g, sell = s_fill[si], s_price[si]
        pnl = qty * sell * (1 - fee) - paid
        if not math.isfinite(pnl):
            return None
        cash += pnl
        loss = inp.exact_pnl(f, g) < 0 if abs(pnl) <= MARGIN * paid else pnl < 0
        if loss:
            last_loss = s_fill_ts[si]
        out.exits.append(g)
        out.sell_prices.append(sell)
        k = g  # the exit fills at this candle's open; its own BUY may enter again
