"""Candlestick patterns are read on the candles' real opens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from strategies import candlestick
from strategies.base import Candles, Direction
from tests.strategies.candle_data import make_candles

ROOT = Path(__file__).resolve().parents[2]


def _decline_then_gap_engulfing() -> Candles:
    """A steady decline, then a bar that gaps down and a bar that engulfs it.

    The second-to-last bar opens at 100 although the bar before closed at 103; the last bar opens
    at 94 although the bar before closed at 95. With those real opens the last bar's body (94..101)
    engulfs the previous body (100..95). Had each open been taken as the previous close, the
    previous body would be 103..95 and the last 95..101: no engulfing.
    """
    closes = [130 - 1.3 * k for k in range(20)] + [103.0, 95.0, 101.0]
    opens = [c + 1.0 for c in closes[:20]] + [105.0, 100.0, 94.0]
    highs = [max(o, c) + 0.3 for o, c in zip(opens, closes, strict=True)]
    lows = [min(o, c) - 0.3 for o, c in zip(opens, closes, strict=True)]
    return make_candles(opens, highs, lows, closes)


def _opens_replaced_by_previous_close(c: Candles) -> Candles:
    opens = np.r_[c.open[0], c.close[:-1]]
    return Candles(pair=c.pair, timeframe_s=c.timeframe_s, ts=c.ts, open=opens, high=c.high, low=c.low,
                   close=c.close, volume=c.volume)


def test_bullish_engulfing_on_real_opens_buys() -> None:
    c = _decline_then_gap_engulfing()
    assert c.open[-1] != c.close[-2] and c.open[-2] != c.close[-3]
    sig = candlestick.evaluate(c)
    assert sig.direction == Direction.BUY
    assert "bullish engulfing" in sig.reason
    assert sig.stop is not None and float(sig.stop) < float(c.low[-3:].min())
    assert candlestick.signals(c)[-1] == 1


def test_same_closes_with_opens_at_previous_close_do_not_buy() -> None:
    c = _opens_replaced_by_previous_close(_decline_then_gap_engulfing())
    sig = candlestick.evaluate(c)
    assert sig.direction == Direction.HOLD
    assert candlestick.signals(c)[-1] == 0


def test_without_a_prior_decline_the_pattern_is_not_a_reversal() -> None:
    c = _decline_then_gap_engulfing()
    rising = [70 + 1.3 * k for k in range(20)]
    opens = np.r_[[x - 1.0 for x in rising], c.open[20:]]
    closes = np.r_[rising, c.close[20:]]
    # Keep the last three bars as they are, but above a rising EMA: no decline to reverse.
    shifted = make_candles(opens, np.maximum(opens, closes) + 0.3, np.minimum(opens, closes) - 0.3, closes)
    assert candlestick.evaluate(shifted).direction == Direction.HOLD
    loose = candlestick.CandlesParams(require_context=False)
    assert candlestick.evaluate(shifted, loose).direction == Direction.BUY


def test_pattern_lookbacks_are_ta_libs_and_loading_the_strategies_leaves_talib_abstract_unloaded() -> None:
    from talib import abstract

    fns = {fn for _, fn in candlestick.BULLISH + candlestick.BEARISH}
    assert candlestick.PATTERN_LOOKBACKS == {fn: abstract.Function(fn).lookback for fn in fns}
    probe = "import sys, strategies.builtins; print('talib.abstract' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
