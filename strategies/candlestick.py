"""``candles``: candlestick reversal patterns from TA-Lib, read on real opens.

Bullish patterns (any of them gives BUY): engulfing, hammer, morning star. Bearish patterns (any
gives SELL): engulfing, shooting star, evening star. TA-Lib reports a pattern on the bar that
completes it. If a bar shows both a bullish and a bearish pattern it is HOLD.

A reversal needs something to reverse, so with ``require_context`` (default) a bullish pattern
counts only when the bar before it closed below its ``trend_period`` EMA, and a bearish pattern only
when that bar closed above it.

The patterns are computed from the candles' own opens. Crypto venues often open a candle away from
the previous close (gaps after an outage, or between venues' candle boundaries), and engulfing or
star patterns compare bodies, so substituting the previous close for the open changes the answer.

For a BUY the stop is the lowest low of the last three bars less ``stop_atr_buffer`` ATRs: under
the pattern, where the reversal is proven wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import talib

from strategies.base import Candles, Signal
from strategies.common import (
    BUY,
    DirectionArray,
    clamp01,
    direction_of,
    last_atr,
    mask_unjudgeable,
    precheck,
    stop_below,
    to_directions,
)
from strategies.params import check_period, check_positive

NAME = "candles"

# (label, TA-Lib function name); bullish ones count when the output is positive, bearish negative.
BULLISH: tuple[tuple[str, str], ...] = (
    ("bullish engulfing", "CDLENGULFING"),
    ("hammer", "CDLHAMMER"),
    ("morning star", "CDLMORNINGSTAR"),
)
BEARISH: tuple[tuple[str, str], ...] = (
    ("bearish engulfing", "CDLENGULFING"),
    ("shooting star", "CDLSHOOTINGSTAR"),
    ("evening star", "CDLEVENINGSTAR"),
)
_FUNCTIONS = sorted({fn for _, fn in BULLISH + BEARISH})
# TA-Lib reports 0 until a pattern's lookback is covered; the warm-up waits for the longest one. These are the
# lookbacks under TA-Lib's default candle settings, as talib.abstract reports them (a test checks): abstract is not
# imported here, as it builds an object for each of TA-Lib's ~160 functions (~1 MB held for the whole run).
PATTERN_LOOKBACKS = {"CDLENGULFING": 2, "CDLEVENINGSTAR": 12, "CDLHAMMER": 11, "CDLMORNINGSTAR": 12,
                     "CDLSHOOTINGSTAR": 11}
_PATTERN_LOOKBACK = max(PATTERN_LOOKBACKS[fn] for fn in _FUNCTIONS)


@dataclass(frozen=True, slots=True)
class CandlesParams:
    require_context: bool = True
    trend_period: int = 10
    atr_period: int = 14
    stop_atr_buffer: float = 0.25

    def __post_init__(self) -> None:
        check_period(NAME, "trend_period", self.trend_period)
        check_period(NAME, "atr_period", self.atr_period, minimum=1)
        check_positive(NAME, "stop_atr_buffer", self.stop_atr_buffer, allow_zero=True)


def warmup(p: CandlesParams) -> int:
    return max(_PATTERN_LOOKBACK + 1, p.trend_period + 1, p.atr_period + 1)


@dataclass(frozen=True, slots=True)
class _Frame:
    directions: DirectionArray
    outputs: dict[str, npt.NDArray[np.int32]]


def _frame(c: Candles, p: CandlesParams) -> _Frame:
    outputs = {fn: getattr(talib, fn)(c.open, c.high, c.low, c.close) for fn in _FUNCTIONS}
    bull = np.zeros(len(c), dtype=np.bool_)
    bear = np.zeros(len(c), dtype=np.bool_)
    for _, fn in BULLISH:
        bull |= outputs[fn] > 0
    for _, fn in BEARISH:
        bear |= outputs[fn] < 0
    if p.require_context:
        ema = talib.EMA(c.close, timeperiod=p.trend_period)
        below = np.zeros(len(c), dtype=np.bool_)
        above = np.zeros(len(c), dtype=np.bool_)
        below[1:] = c.close[:-1] < ema[:-1]
        above[1:] = c.close[:-1] > ema[:-1]
        bull &= below
        bear &= above
    return _Frame(to_directions(bull, bear), outputs)


def signals(c: Candles, p: CandlesParams = CandlesParams()) -> DirectionArray:
    return mask_unjudgeable(_frame(c, p).directions, c, warmup(p))


def evaluate(c: Candles, p: CandlesParams = CandlesParams()) -> Signal:
    early = precheck(c, NAME, warmup(p))
    if early is not None:
        return early
    f = _frame(c, p)
    code = int(f.directions[-1])
    if code == 0:
        return Signal.hold(c.pair, NAME, "no reversal pattern in context")
    if code == BUY:
        seen = [label for label, fn in BULLISH if f.outputs[fn][-1] > 0]
    else:
        seen = [label for label, fn in BEARISH if f.outputs[fn][-1] < 0]
    strength = clamp01(0.5 + 0.25 * (len(seen) - 1))
    close = float(c.close[-1])
    stop = None
    if code == BUY:
        level = float(np.min(c.low[-3:])) - p.stop_atr_buffer * last_atr(c, p.atr_period)
        stop = stop_below(close, close - level)
    context = ""
    if p.require_context:
        context = f" after a close {'below' if code == BUY else 'above'} EMA {p.trend_period}"
    return Signal(
        pair=c.pair,
        direction=direction_of(code),
        strength=strength,
        reason=", ".join(seen) + context,
        strategy=NAME,
        stop=stop,
    )
