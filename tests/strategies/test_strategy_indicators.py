"""The strategies' decisions and levels follow TA-Lib's own indicator values on real candles.

Each expected array is re-derived here bar by bar from TA-Lib outputs, independently of the
vectorized code under test.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import talib

from strategies import breakout, candlestick, mean_reversion, momentum, sma_cross, trend
from strategies.base import Candles
from tests.strategies.candle_data import window

SLICE = (6000, 10000)


def _real(btc: Candles) -> Candles:
    return window(btc, *SLICE)


def _cross_up(a: np.ndarray, b: np.ndarray, i: int) -> bool:
    return i > 0 and a[i - 1] < b[i - 1] and a[i] > b[i]


def test_sma_cross_fires_exactly_where_talib_smas_cross(btc: Candles) -> None:
    c = _real(btc)
    fast, slow = talib.SMA(c.close, 10), talib.SMA(c.close, 30)
    expected = [1 if _cross_up(fast, slow, i) else -1 if _cross_up(slow, fast, i) else 0 for i in range(len(c))]
    assert sma_cross.signals(c).tolist() == expected


def test_trend_uses_talib_ema_adx_and_atr(btc: Candles) -> None:
    c = _real(btc)
    p = trend.TrendParams(adx_threshold=25.0, take_profit_atr=3.0)
    fast, slow = talib.EMA(c.close, p.fast), talib.EMA(c.close, p.slow)
    adx = talib.ADX(c.high, c.low, c.close, p.adx_period)
    atr = talib.ATR(c.high, c.low, c.close, p.atr_period)
    expected = []
    for i in range(len(c)):
        if _cross_up(fast, slow, i) and adx[i] >= 25.0:
            expected.append(1)
        elif _cross_up(slow, fast, i):
            expected.append(-1)
        else:
            expected.append(0)
    got = trend.signals(c, p)
    assert got.tolist() == expected
    buy = int(np.flatnonzero(got == 1)[0])
    sig = trend.evaluate(window(c, 0, buy + 1), p)
    close = float(c.close[buy])
    assert sig.stop == Decimal(f"{close - 2.0 * atr[buy]:.10g}")
    assert sig.take_profit == Decimal(f"{close + 3.0 * atr[buy]:.10g}")
    assert f"ADX {adx[buy]:.1f}" in sig.reason


def test_mean_reversion_uses_talib_rsi_and_bollinger_bands(btc: Candles) -> None:
    c = _real(btc)
    rsi = talib.RSI(c.close, 14)
    _upper, middle, lower = talib.BBANDS(c.close, 20, 2.0, 2.0)
    atr = talib.ATR(c.high, c.low, c.close, 14)
    expected = []
    for i in range(len(c)):
        buy = c.close[i] < lower[i] and rsi[i] <= 30
        sell = c.close[i] > middle[i] or rsi[i] >= 70
        expected.append(1 if buy and not sell else -1 if sell and not buy else 0)
    got = mean_reversion.signals(c)
    assert got.tolist() == expected
    buy = int(np.flatnonzero(got == 1)[0])
    sig = mean_reversion.evaluate(window(c, 0, buy + 1))
    assert sig.take_profit == Decimal(f"{middle[buy]:.10g}")
    assert sig.stop == Decimal(f"{c.close[buy] - 2.0 * atr[buy]:.10g}")
    assert f"RSI {rsi[buy]:.1f}" in sig.reason


def test_mean_reversion_upper_exit_band(btc: Candles) -> None:
    c = _real(btc)
    p = mean_reversion.MeanReversionParams(exit_band="upper")
    rsi = talib.RSI(c.close, 14)
    upper, _, _lower = talib.BBANDS(c.close, 20, 2.0, 2.0)
    sells = (c.close > upper) | (rsi >= 70)
    assert np.array_equal(mean_reversion.signals(c, p) == -1, sells)


def test_momentum_uses_talib_macd(btc: Candles) -> None:
    c = _real(btc)
    macd, signal, hist = talib.MACD(c.close, 12, 26, 9)
    expected = [1 if _cross_up(macd, signal, i) else -1 if _cross_up(signal, macd, i) else 0 for i in range(len(c))]
    assert momentum.signals(c).tolist() == expected
    sig = momentum.evaluate(c)
    assert f"{hist[-1]:.6g}" in sig.reason

    above = momentum.signals(c, momentum.MomentumParams(above_zero=True))
    assert all(macd[i] > 0 for i in np.flatnonzero(above == 1))
    assert (above == 1).sum() < (np.asarray(expected) == 1).sum()

    hist_mode = momentum.signals(c, momentum.MomentumParams(mode="histogram"))
    for i in range(34, len(c)):
        want = 1 if hist[i] > 0 and hist[i] > hist[i - 1] else -1 if hist[i] < 0 else 0
        assert hist_mode[i] == want, i


def test_keltner_channel_is_talib_ema_plus_minus_atr(btc: Candles) -> None:
    c = _real(btc)
    p = breakout.BreakoutParams(ema_period=20, atr_period=10, channel_atr=1.5)
    k = breakout.keltner(c, p)
    ema, atr = talib.EMA(c.close, 20), talib.ATR(c.high, c.low, c.close, 10)
    np.testing.assert_array_equal(k.middle, ema)
    np.testing.assert_array_equal(k.upper, ema + 1.5 * atr)
    np.testing.assert_array_equal(k.lower, ema - 1.5 * atr)
    got = breakout.signals(c, p)
    expected = np.where(c.close > ema + 1.5 * atr, 1, np.where(c.close < ema, -1, 0))
    expected[: breakout.warmup(p) - 1] = 0
    assert got.tolist() == expected.tolist()
    lower_exit = breakout.signals(c, breakout.BreakoutParams(exit_line="lower"))
    assert (lower_exit == -1).sum() < (breakout.signals(c) == -1).sum()


def test_candles_follow_talib_patterns_with_trend_context(btc: Candles) -> None:
    c = _real(btc)
    args = (c.open, c.high, c.low, c.close)
    eng = talib.CDLENGULFING(*args)
    bull = (eng > 0) | (talib.CDLHAMMER(*args) > 0) | (talib.CDLMORNINGSTAR(*args) > 0)
    bear = (eng < 0) | (talib.CDLSHOOTINGSTAR(*args) < 0) | (talib.CDLEVENINGSTAR(*args) < 0)
    ema = talib.EMA(c.close, 10)
    expected = []
    for i in range(len(c)):
        b = bool(bull[i]) and i > 0 and c.close[i - 1] < ema[i - 1]
        s = bool(bear[i]) and i > 0 and c.close[i - 1] > ema[i - 1]
        expected.append(1 if b and not s else -1 if s and not b else 0)
    skip = candlestick.warmup(candlestick.CandlesParams()) - 1
    expected[:skip] = [0] * skip
    assert candlestick.signals(c).tolist() == expected
    free = candlestick.signals(c, candlestick.CandlesParams(require_context=False))
    assert (free != 0).sum() > (np.asarray(expected) != 0).sum()


def test_reasons_quote_talib_values(btc: Candles) -> None:
    for end in range(12000, 12400, 37):
        c = window(btc, end - 300, end)
        rsi = talib.RSI(c.close, 14)[-1]
        assert f"RSI {rsi:.1f}" in mean_reversion.evaluate(c).reason
        sig = trend.evaluate(c)
        adx = talib.ADX(c.high, c.low, c.close, 14)[-1]
        assert f"ADX {adx:.1f}" in sig.reason
