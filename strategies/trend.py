"""``trend``: EMA crossover confirmed by ADX, with an ATR stop.

BUY on the bar where the fast EMA crosses above the slow EMA while ADX is at or above the
threshold (a cross in a directionless market is mostly noise). SELL on the bar where the fast EMA
crosses below the slow one, whatever the ADX: an exit should not wait for the trend to be strong.
The stop is ``stop_atr`` ATRs under the close; a take-profit ``take_profit_atr`` ATRs above it is
suggested only when that parameter is above zero (by default the trend is left to run).
"""

from __future__ import annotations

from dataclasses import dataclass

import talib

from strategies.base import Candles, FloatArray, Signal
from strategies.common import (
    BUY,
    DirectionArray,
    clamp01,
    crossed_above,
    crossed_below,
    direction_of,
    last_atr,
    mask_unjudgeable,
    precheck,
    stop_below,
    target_above,
    to_directions,
)
from strategies.params import check_less, check_period, check_positive, check_range

NAME = "trend"


@dataclass(frozen=True, slots=True)
class TrendParams:
    fast: int = 12
    slow: int = 26
    adx_period: int = 14
    adx_threshold: float = 20.0
    atr_period: int = 14
    stop_atr: float = 2.0
    take_profit_atr: float = 0.0

    def __post_init__(self) -> None:
        check_period(NAME, "fast", self.fast)
        check_period(NAME, "slow", self.slow)
        check_less(NAME, "fast", self.fast, "slow", self.slow)
        check_period(NAME, "adx_period", self.adx_period)
        check_range(NAME, "adx_threshold", self.adx_threshold, 0.0, 100.0)
        check_period(NAME, "atr_period", self.atr_period, minimum=1)
        check_positive(NAME, "stop_atr", self.stop_atr)
        check_positive(NAME, "take_profit_atr", self.take_profit_atr, allow_zero=True)


def warmup(p: TrendParams) -> int:
    # slow EMA on this bar and the one before; ADX needs 2*period bars; ATR needs period+1.
    return max(p.slow + 1, 2 * p.adx_period, p.atr_period + 1)


@dataclass(frozen=True, slots=True)
class _Frame:
    directions: DirectionArray
    fast: FloatArray
    slow: FloatArray
    adx: FloatArray


def _frame(c: Candles, p: TrendParams) -> _Frame:
    fast = talib.EMA(c.close, timeperiod=p.fast)
    slow = talib.EMA(c.close, timeperiod=p.slow)
    adx = talib.ADX(c.high, c.low, c.close, timeperiod=p.adx_period)
    buy = crossed_above(fast, slow) & (adx >= p.adx_threshold)
    sell = crossed_below(fast, slow)
    return _Frame(to_directions(buy, sell), fast, slow, adx)


def signals(c: Candles, p: TrendParams = TrendParams()) -> DirectionArray:
    return mask_unjudgeable(_frame(c, p).directions, c, warmup(p))


def evaluate(c: Candles, p: TrendParams = TrendParams()) -> Signal:
    early = precheck(c, NAME, warmup(p))
    if early is not None:
        return early
    f = _frame(c, p)
    code = int(f.directions[-1])
    adx = float(f.adx[-1])
    if code == 0:
        reason = f"no EMA {p.fast}/{p.slow} cross with ADX >= {p.adx_threshold:g} (ADX {adx:.1f})"
        return Signal.hold(c.pair, NAME, reason)
    close = float(c.close[-1])
    atr = last_atr(c, p.atr_period)
    # ADX at the threshold gives 0.5, ADX 25 points above it gives 1.
    strength = clamp01(0.5 + (adx - p.adx_threshold) / 50.0)
    if code == BUY:
        take_profit = target_above(close, close + p.take_profit_atr * atr) if p.take_profit_atr > 0 else None
        return Signal(
            pair=c.pair,
            direction=direction_of(code),
            strength=strength,
            reason=f"EMA {p.fast} crossed above EMA {p.slow}, ADX {adx:.1f} >= {p.adx_threshold:g}",
            strategy=NAME,
            stop=stop_below(close, p.stop_atr * atr),
            take_profit=take_profit,
        )
    return Signal(
        pair=c.pair,
        direction=direction_of(code),
        strength=max(strength, 0.5),
        reason=f"EMA {p.fast} crossed below EMA {p.slow} (ADX {adx:.1f})",
        strategy=NAME,
    )
