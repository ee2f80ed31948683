"""Small pieces every built-in strategy shares: input checks, crossings, warm-up masking, prices.

Each built-in strategy computes its indicators over the whole window and derives one direction per
bar (+1 BUY, -1 SELL, 0 HOLD). The per-bar ``evaluate`` reads the last element of that same array,
so the per-bar and vectorized forms cannot drift apart. TA-Lib indicators are causal and start from
the first bar of whatever they are given, so the value at bar ``i`` computed over ``[0..n)`` equals
the one computed over ``[0..i]``; the tests check that guarantee on real candles.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import talib

from strategies.base import Candles, Direction, Signal

BUY: int = 1
SELL: int = -1
HOLD: int = 0
DirectionArray = npt.NDArray[np.int8]

_DIRECTION_BY_CODE = {BUY: Direction.BUY, SELL: Direction.SELL, HOLD: Direction.HOLD}


def direction_of(code: int) -> Direction:
    return _DIRECTION_BY_CODE[int(code)]


def prices_finite(candles: Candles) -> bool:
    """True when every open, high, low and close is a finite number.

    Sums first: NaN and infinity survive a sum, so a finite total (the usual case) settles it in four
    cheap reductions; only a non-finite total, which huge but finite prices could also cause by
    overflowing, is checked element by element. Volume is not checked: no built-in reads it.
    """
    arrays = (candles.open, candles.high, candles.low, candles.close)
    if math.isfinite(float(sum(np.add.reduce(a) for a in arrays))):
        return True
    return all(bool(np.isfinite(a).all()) for a in arrays)


def precheck(candles: Candles, strategy: str, warmup: int) -> Signal | None:
    """A HOLD signal when the window cannot be judged yet, else ``None``.

    Too few candles and non-finite prices both give HOLD rather than an exception: the scan goes on,
    and the reason tells the user why nothing happened.
    """
    n = len(candles)
    if n < warmup:
        return Signal.hold(candles.pair, strategy, f"warming up: {n} of {warmup} candles")
    if not prices_finite(candles):
        return Signal.hold(candles.pair, strategy, "window contains NaN or infinite prices")
    return None


def crossed_above(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Bars where ``a`` is strictly above ``b`` after being strictly below it on the bar before.

    Strict on both sides, the usual definition of a crossover: a bar where the two lines are equal
    is neither above nor below, so touching and turning back is not a cross. NaN compares false,
    so bars before the indicators are defined never cross.
    """
    out = np.zeros(a.shape[0], dtype=np.bool_)
    out[1:] = (a[1:] > b[1:]) & (a[:-1] < b[:-1])
    return out


def crossed_below(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return crossed_above(b, a)


def to_directions(buy: npt.NDArray[np.bool_], sell: npt.NDArray[np.bool_]) -> DirectionArray:
    """+1 where only ``buy`` holds, -1 where only ``sell`` holds, 0 elsewhere (including both)."""
    return np.subtract(buy, sell, dtype=np.int8)


def mask_unjudgeable(directions: DirectionArray, candles: Candles, warmup: int) -> DirectionArray:
    """Zero the bars whose window ``[0..i]`` the per-bar form would refuse to judge.

    That is every bar before the warm-up is complete, and every bar from the first non-finite price
    on (a window containing it gives HOLD). Works in place and returns the array.
    """
    directions[: max(warmup - 1, 0)] = HOLD
    finite = (
        np.isfinite(candles.open)
        & np.isfinite(candles.high)
        & np.isfinite(candles.low)
        & np.isfinite(candles.close)
    )
    if not finite.all():
        directions[int(np.argmin(finite)) :] = HOLD
    return directions


def price(value: float) -> Decimal | None:
    """A suggested price as ``Decimal`` with ten significant digits, or ``None`` if unusable.

    Ten significant digits keep sub-satoshi precision on cheap coins and cents on expensive ones;
    the venue layer rounds to the market's tick size later. Non-finite or non-positive values give
    ``None`` so that a degenerate indicator never becomes a stop at zero.
    """
    if not math.isfinite(value) or value <= 0:
        return None
    result = Decimal(f"{value:.10g}")
    return result if result > 0 else None


def stop_below(close: float, distance: float) -> Decimal | None:
    """A long stop ``distance`` under ``close``; ``None`` unless it lands strictly between 0 and close."""
    level = close - distance
    if not math.isfinite(level) or not level < close:
        return None
    return price(level)


def target_above(close: float, level: float) -> Decimal | None:
    """A take-profit at ``level``; ``None`` unless it is strictly above ``close``."""
    if not math.isfinite(level) or not level > close:
        return None
    return price(level)


def clamp01(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))


def last_atr(candles: Candles, period: int) -> float:
    """ATR of the last bar.

    Computed only when a level is needed (mostly on BUY, a rare bar), not for every HOLD.
    """
    return float(talib.ATR(candles.high, candles.low, candles.close, timeperiod=period)[-1])
