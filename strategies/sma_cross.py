"""``sma_cross``: simple moving-average crossover, the reference strategy.

BUY on the bar where the fast SMA crosses above the slow one, SELL on the bar where it crosses
below, HOLD otherwise. It is deliberately plain so that a backtest of it can be checked against an
independent implementation; "cross" uses the strict definition in :func:`strategies.common.crossed_above`.
No stop is suggested: the risk layer's default stop applies.
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
    mask_unjudgeable,
    precheck,
    to_directions,
)
from strategies.params import check_less, check_period

NAME = "sma_cross"


@dataclass(frozen=True, slots=True)
class SmaCrossParams:
    fast: int = 10
    slow: int = 30

    def __post_init__(self) -> None:
        check_period(NAME, "fast", self.fast)
        check_period(NAME, "slow", self.slow)
        check_less(NAME, "fast", self.fast, "slow", self.slow)


def warmup(p: SmaCrossParams) -> int:
    """Candles needed before a cross can be seen: the slow SMA on this bar and the one before."""
    return p.slow + 1


def _lines(c: Candles, p: SmaCrossParams) -> tuple[DirectionArray, FloatArray, FloatArray]:
    fast = talib.SMA(c.close, timeperiod=p.fast)
    slow = talib.SMA(c.close, timeperiod=p.slow)
    return to_directions(crossed_above(fast, slow), crossed_below(fast, slow)), fast, slow


def signals(c: Candles, p: SmaCrossParams = SmaCrossParams()) -> DirectionArray:
    directions, _, _ = _lines(c, p)
    return mask_unjudgeable(directions, c, warmup(p))


def evaluate(c: Candles, p: SmaCrossParams = SmaCrossParams()) -> Signal:
    early = precheck(c, NAME, warmup(p))
    if early is not None:
        return early
    directions, fast_line, slow_line = _lines(c, p)
    code = int(directions[-1])
    if code == 0:
        return Signal.hold(c.pair, NAME, f"no SMA {p.fast}/{p.slow} cross")
    fast = float(fast_line[-1])
    slow = float(slow_line[-1])
    # A fresh cross has a tiny gap; strength grows with how decisively the fast line moved through.
    strength = clamp01(0.5 + 50.0 * abs(fast - slow) / slow)
    word = "above" if code == BUY else "below"
    return Signal(
        pair=c.pair,
        direction=direction_of(code),
        strength=strength,
        reason=f"SMA {p.fast} ({fast:.6g}) crossed {word} SMA {p.slow} ({slow:.6g})",
        strategy=NAME,
    )
