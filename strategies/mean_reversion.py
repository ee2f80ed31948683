"""``mean_reversion``: buy a stretched, oversold dip; sell once price is back at the mean or overbought.

BUY while the close is below the lower Bollinger band *and* RSI is at or below ``oversold``: both
at once, because either alone fires constantly in a falling market. SELL while the close is above
the exit band (``middle`` by default, or ``upper``) or RSI is at or above ``overbought``. These are
states, not events: the signal repeats on every bar the condition holds, and the engine acts on it
only when it has (or has not) a position.

The stop is ``stop_atr`` ATRs under the close; the take-profit is the middle band, the mean the
trade expects price to return to.
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
    last_atr,
    mask_unjudgeable,
    precheck,
    stop_below,
    target_above,
    to_directions,
)
from strategies.params import check_choice, check_less, check_period, check_positive, check_range

NAME = "mean_reversion"
EXIT_BANDS = ("middle", "upper")


@dataclass(frozen=True, slots=True)
class MeanReversionParams:
    rsi_period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    bb_period: int = 20
    bb_stddev: float = 2.0
    exit_band: str = "middle"
    atr_period: int = 14
    stop_atr: float = 2.0

    def __post_init__(self) -> None:
        check_period(NAME, "rsi_period", self.rsi_period)
        check_range(NAME, "oversold", self.oversold, 0.0, 100.0)
        check_range(NAME, "overbought", self.overbought, 0.0, 100.0)
        check_less(NAME, "oversold", self.oversold, "overbought", self.overbought)
        check_period(NAME, "bb_period", self.bb_period)
        check_positive(NAME, "bb_stddev", self.bb_stddev)
        check_choice(NAME, "exit_band", self.exit_band, EXIT_BANDS)
        check_period(NAME, "atr_period", self.atr_period, minimum=1)
        check_positive(NAME, "stop_atr", self.stop_atr)


def warmup(p: MeanReversionParams) -> int:
    return max(p.rsi_period + 1, p.bb_period, p.atr_period + 1)


@dataclass(frozen=True, slots=True)
class _Frame:
    directions: DirectionArray
    rsi: FloatArray
    upper: FloatArray
    middle: FloatArray
    lower: FloatArray


def _frame(c: Candles, p: MeanReversionParams) -> _Frame:
    rsi = talib.RSI(c.close, timeperiod=p.rsi_period)
    # TA-Lib's default moving average for the bands is the simple one, as Bollinger defined them.
    upper, middle, lower = talib.BBANDS(
        c.close, timeperiod=p.bb_period, nbdevup=p.bb_stddev, nbdevdn=p.bb_stddev
    )
    exit_line = middle if p.exit_band == "middle" else upper
    buy = (c.close < lower) & (rsi <= p.oversold)
    sell = (c.close > exit_line) | (rsi >= p.overbought)
    return _Frame(to_directions(buy, sell), rsi, upper, middle, lower)


def signals(c: Candles, p: MeanReversionParams = MeanReversionParams()) -> DirectionArray:
    return mask_unjudgeable(_frame(c, p).directions, c, warmup(p))


def evaluate(c: Candles, p: MeanReversionParams = MeanReversionParams()) -> Signal:
    early = precheck(c, NAME, warmup(p))
    if early is not None:
        return early
    f = _frame(c, p)
    code = int(f.directions[-1])
    close = float(c.close[-1])
    rsi = float(f.rsi[-1])
    lower, middle, upper = float(f.lower[-1]), float(f.middle[-1]), float(f.upper[-1])
    if code == 0:
        return Signal.hold(c.pair, NAME, f"inside the bands (RSI {rsi:.1f})")
    half_width = max(upper - middle, 1e-12)
    if code == BUY:
        # Deeper under the band and lower RSI make a stronger case.
        depth = (lower - close) / half_width
        strength = clamp01(0.5 + 0.5 * depth + (p.oversold - rsi) / 60.0)
        return Signal(
            pair=c.pair,
            direction=direction_of(code),
            strength=strength,
            reason=f"close {close:.6g} below lower band {lower:.6g}, RSI {rsi:.1f} <= {p.oversold:g}",
            strategy=NAME,
            stop=stop_below(close, p.stop_atr * last_atr(c, p.atr_period)),
            take_profit=target_above(close, middle),
        )
    exit_line = middle if p.exit_band == "middle" else upper
    parts = []
    if close > exit_line:
        parts.append(f"close {close:.6g} above {p.exit_band} band {exit_line:.6g}")
    if rsi >= p.overbought:
        parts.append(f"RSI {rsi:.1f} >= {p.overbought:g}")
    else:
        parts.append(f"RSI {rsi:.1f}")
    # At the middle band 0.5, at the upper band 0.75; RSI far past overbought adds the rest.
    strength = clamp01(0.5 + max((close - middle) / half_width, 0.0) / 4 + max(rsi - p.overbought, 0.0) / 60.0)
    return Signal(
        pair=c.pair, direction=direction_of(code), strength=strength, reason=", ".join(parts), strategy=NAME
    )
