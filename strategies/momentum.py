"""``momentum``: MACD line against its signal line.

In ``cross`` mode (the default) BUY on the bar where the MACD line crosses above the signal line
and SELL on the bar where it crosses below. In ``histogram`` mode the signal is the histogram's
sign as a state: BUY while it is positive and growing, SELL while it is negative. ``above_zero``
additionally requires the MACD line itself to be above zero for a BUY, so that only crosses inside
an up-move count. The stop is ``stop_atr`` ATRs under the close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    to_directions,
)
from strategies.params import check_choice, check_less, check_period, check_positive

NAME = "momentum"
MODES = ("cross", "histogram")


@dataclass(frozen=True, slots=True)
class MomentumParams:
    fast: int = 12
    slow: int = 26
    signal: int = 9
    mode: str = "cross"
    above_zero: bool = False
    atr_period: int = 14
    stop_atr: float = 2.0

    def __post_init__(self) -> None:
        check_period(NAME, "fast", self.fast)
        check_period(NAME, "slow", self.slow)
        check_less(NAME, "fast", self.fast, "slow", self.slow)
        check_period(NAME, "signal", self.signal, minimum=1)
        check_choice(NAME, "mode", self.mode, MODES)
        check_period(NAME, "atr_period", self.atr_period, minimum=1)
        check_positive(NAME, "stop_atr", self.stop_atr)


def warmup(p: MomentumParams) -> int:
    # MACD's signal line is first defined at index slow + signal - 2; a cross needs one more bar.
    return max(p.slow + p.signal, p.atr_period + 1)


@dataclass(frozen=True, slots=True)
class _Frame:
    directions: DirectionArray
    macd: FloatArray
    signal: FloatArray
    hist: FloatArray


def _frame(c: Candles, p: MomentumParams) -> _Frame:
    macd, signal, hist = talib.MACD(c.close, fastperiod=p.fast, slowperiod=p.slow, signalperiod=p.signal)
    if p.mode == "cross":
        buy = crossed_above(macd, signal)
        sell = crossed_below(macd, signal)
    else:
        growing = np.zeros(hist.shape[0], dtype=np.bool_)
        growing[1:] = hist[1:] > hist[:-1]
        buy = (hist > 0) & growing
        sell = hist < 0
    if p.above_zero:
        buy = buy & (macd > 0)
    return _Frame(to_directions(buy, sell), macd, signal, hist)


def signals(c: Candles, p: MomentumParams = MomentumParams()) -> DirectionArray:
    return mask_unjudgeable(_frame(c, p).directions, c, warmup(p))


def evaluate(c: Candles, p: MomentumParams = MomentumParams()) -> Signal:
    early = precheck(c, NAME, warmup(p))
    if early is not None:
        return early
    f = _frame(c, p)
    code = int(f.directions[-1])
    macd, hist = float(f.macd[-1]), float(f.hist[-1])
    if code == 0:
        return Signal.hold(c.pair, NAME, f"no MACD {p.mode} signal (histogram {hist:.6g})")
    close = float(c.close[-1])
    atr = last_atr(c, p.atr_period)
    # Histogram measured in ATRs: a histogram of a fifth of an ATR is already a decisive move.
    strength = clamp01(0.5 + 2.5 * abs(hist) / atr) if atr > 0 else 0.5
    what = "crossed above" if code == BUY else "crossed below"
    if p.mode == "histogram":
        what = "histogram positive and rising" if code == BUY else "histogram negative"
        reason = f"MACD {what} ({hist:.6g})"
    else:
        reason = f"MACD line {what} its signal line (MACD {macd:.6g}, histogram {hist:.6g})"
    return Signal(
        pair=c.pair,
        direction=direction_of(code),
        strength=strength,
        reason=reason,
        strategy=NAME,
        stop=stop_below(close, p.stop_atr * atr) if code == BUY else None,
    )
