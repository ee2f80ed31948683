"""``breakout``: close outside a Keltner channel.

The channel is an EMA of the close plus and minus ``channel_atr`` ATRs. BUY while the close is
above the upper line (price escaping its usual range upwards); SELL while the close is below the
exit line, the EMA (``middle``, default) or the lower line (``lower``). Both are states, repeated on
every bar they hold. The stop is ``stop_atr`` ATRs under the close.

The channel is computed here from TA-Lib's EMA and ATR; TA-Lib has no Keltner function of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import talib

from strategies.base import Candles, FloatArray, Signal
from strategies.common import (
    BUY,
    DirectionArray,
    clamp01,
    direction_of,
    mask_unjudgeable,
    precheck,
    stop_below,
    to_directions,
)
from strategies.params import check_choice, check_period, check_positive

NAME = "breakout"
EXIT_LINES = ("middle", "lower")


@dataclass(frozen=True, slots=True)
class BreakoutParams:
    ema_period: int = 20
    atr_period: int = 10
    channel_atr: float = 2.0
    exit_line: str = "middle"
    stop_atr: float = 2.0

    def __post_init__(self) -> None:
        check_period(NAME, "ema_period", self.ema_period)
        check_period(NAME, "atr_period", self.atr_period, minimum=1)
        check_positive(NAME, "channel_atr", self.channel_atr)
        check_choice(NAME, "exit_line", self.exit_line, EXIT_LINES)
        check_positive(NAME, "stop_atr", self.stop_atr)


def warmup(p: BreakoutParams) -> int:
    return max(p.ema_period, p.atr_period + 1)


@dataclass(frozen=True, slots=True)
class KeltnerChannel:
    upper: FloatArray
    middle: FloatArray
    lower: FloatArray
    atr: FloatArray


def keltner(c: Candles, p: BreakoutParams) -> KeltnerChannel:
    """The Keltner channel over the whole window (NaN until both EMA and ATR are defined)."""
    middle = talib.EMA(c.close, timeperiod=p.ema_period)
    atr = talib.ATR(c.high, c.low, c.close, timeperiod=p.atr_period)
    return KeltnerChannel(middle + p.channel_atr * atr, middle, middle - p.channel_atr * atr, atr)


def _directions(c: Candles, p: BreakoutParams, k: KeltnerChannel) -> DirectionArray:
    exit_line = k.middle if p.exit_line == "middle" else k.lower
    return to_directions(c.close > k.upper, c.close < exit_line)


def signals(c: Candles, p: BreakoutParams = BreakoutParams()) -> DirectionArray:
    return mask_unjudgeable(_directions(c, p, keltner(c, p)), c, warmup(p))


def evaluate(c: Candles, p: BreakoutParams = BreakoutParams()) -> Signal:
    early = precheck(c, NAME, warmup(p))
    if early is not None:
        return early
    k = keltner(c, p)
    code = int(_directions(c, p, k)[-1])
    close = float(c.close[-1])
    upper, middle, lower = float(k.upper[-1]), float(k.middle[-1]), float(k.lower[-1])
    if code == 0:
        return Signal.hold(c.pair, NAME, f"close {close:.6g} inside the Keltner channel")
    atr = float(k.atr[-1])
    if code == BUY:
        # Half an ATR beyond the line is already a clear break.
        strength = clamp01(0.5 + (close - upper) / atr) if atr > 0 else 0.5
        return Signal(
            pair=c.pair,
            direction=direction_of(code),
            strength=strength,
            reason=f"close {close:.6g} broke above Keltner upper {upper:.6g}",
            strategy=NAME,
            stop=stop_below(close, p.stop_atr * atr),
        )
    line = middle if p.exit_line == "middle" else lower
    strength = clamp01(0.5 + (line - close) / atr) if atr > 0 else 0.5
    return Signal(
        pair=c.pair,
        direction=direction_of(code),
        strength=strength,
        reason=f"close {close:.6g} below Keltner {p.exit_line} {line:.6g}",
        strategy=NAME,
    )
