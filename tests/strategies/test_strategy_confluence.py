"""Weighted combination of strategy signals, its validation, and the higher-timeframe veto."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from strategies.base import Candles, Direction, Signal
from strategies.confluence import Confluence, HigherTimeframeTrend
from strategies.errors import StrategyConfigError
from tests.strategies.candle_data import make_candles, window

PAIR = "BTC/USD"
KNOWN = ("trend", "momentum", "breakout", "candles")


def buy(name: str, strength: float, stop: str | None = None, tp: str | None = None) -> Signal:
    return Signal(PAIR, Direction.BUY, strength, "setup", name,
                  Decimal(stop) if stop else None, Decimal(tp) if tp else None)


def sell(name: str, strength: float) -> Signal:
    return Signal(PAIR, Direction.SELL, strength, "exit", name)


@pytest.mark.parametrize(
    ("weights", "key"),
    [
        ({"trend": math.nan, "momentum": 1.0}, "weights.trend"),
        ({"trend": 1.0, "momentum": math.inf}, "weights.momentum"),
        ({"trend": 1.0, "breakout": -0.5}, "weights.breakout"),
        ({"trend": 0.0, "momentum": 0.0}, "trend, momentum"),
        ({"trend": 1.0, "trnd": 1.0}, "weights.trnd"),
        ({"trend": 1.0, "candles": "2"}, "weights.candles"),
    ],
    ids=["nan", "inf", "negative", "all-zero", "unknown-name", "not-a-number"],
)
def test_bad_weights_are_refused_naming_the_key(weights: dict[str, float], key: str) -> None:
    with pytest.raises(StrategyConfigError, match=key):
        Confluence(weights, known=KNOWN)


def test_empty_weights_and_bad_thresholds_are_refused() -> None:
    with pytest.raises(StrategyConfigError, match="weights"):
        Confluence({}, known=KNOWN)
    with pytest.raises(StrategyConfigError, match="entry_threshold"):
        Confluence({"trend": 1.0}, known=KNOWN, entry_threshold=0.0)
    with pytest.raises(StrategyConfigError, match="exit_threshold"):
        Confluence({"trend": 1.0}, known=KNOWN, exit_threshold=1.5)
    with pytest.raises(StrategyConfigError, match="entry_threshold"):
        Confluence({"trend": 1.0}, known=KNOWN, entry_threshold=math.nan)


def test_unknown_weight_is_checked_against_the_builtins_by_default() -> None:
    Confluence({"sma_cross": 1.0, "mean_reversion": 2.0})
    with pytest.raises(StrategyConfigError, match=r"weights\.my_strategy"):
        Confluence({"my_strategy": 1.0})


def test_score_is_the_weighted_mean_of_votes() -> None:
    conf = Confluence({"trend": 2.0, "momentum": 1.0, "breakout": 1.0}, known=KNOWN, entry_threshold=0.3)
    sig = conf.combine(PAIR, {"trend": buy("trend", 0.8), "momentum": sell("momentum", 0.4),
                              "breakout": Signal.hold(PAIR, "breakout")})
    # (2*0.8 - 1*0.4 + 0) / 4 = 0.3
    assert sig.direction == Direction.BUY and sig.strategy == "confluence"
    assert sig.strength == pytest.approx(0.3)
    assert "trend buy 0.80x2" in sig.reason and "momentum sell 0.40x1" in sig.reason


def test_below_the_entry_threshold_is_hold_and_strong_selling_is_sell() -> None:
    conf = Confluence({"trend": 1.0, "momentum": 1.0}, known=KNOWN, entry_threshold=0.5, exit_threshold=0.25)
    hold = conf.combine(PAIR, {"trend": buy("trend", 0.9), "momentum": Signal.hold(PAIR, "momentum")})
    assert hold.direction == Direction.HOLD and "score +0.45" in hold.reason
    out = conf.combine(PAIR, {"trend": sell("trend", 0.5), "momentum": Signal.hold(PAIR, "momentum")})
    assert out.direction == Direction.SELL and out.strength == pytest.approx(0.25)


def test_a_missing_member_counts_as_hold_but_keeps_its_weight() -> None:
    conf = Confluence({"trend": 1.0, "momentum": 1.0}, known=KNOWN, entry_threshold=0.6)
    sig = conf.combine(PAIR, {"trend": buy("trend", 1.0)})
    assert sig.direction == Direction.HOLD
    assert "momentum missing" in sig.reason


def test_stop_is_the_tightest_and_target_the_nearest_among_buyers() -> None:
    conf = Confluence({"trend": 1.0, "momentum": 1.0, "breakout": 1.0, "candles": 0.0}, known=KNOWN)
    sig = conf.combine(
        PAIR,
        {
            "trend": buy("trend", 0.9, stop="95", tp="130"),
            "momentum": buy("momentum", 0.6, stop="97.5", tp="120"),
            "breakout": buy("breakout", 0.6, stop="101", tp="99"),  # both on the wrong side of 100
            "candles": buy("candles", 1.0, stop="99.9", tp="101"),  # weight 0: not a contributor
        },
        last_close=100.0,
    )
    assert sig.direction == Direction.BUY
    assert sig.stop == Decimal("97.5")
    assert sig.take_profit == Decimal("120")


def test_sell_carries_no_levels() -> None:
    conf = Confluence({"trend": 1.0}, known=KNOWN)
    sig = conf.combine(PAIR, {"trend": sell("trend", 1.0)})
    assert sig.direction == Direction.SELL and sig.stop is None and sig.take_profit is None


def _trend_line(start: float, step: float, n: int = 80) -> Candles:
    closes = start + step * np.arange(n)
    return make_candles(closes, closes + 1, closes - 1, closes, timeframe_s=4 * 3600)


def test_higher_timeframe_downtrend_vetoes_a_buy() -> None:
    conf = Confluence({"trend": 1.0}, known=KNOWN, higher_timeframe=HigherTimeframeTrend(50))
    signals = {"trend": buy("trend", 1.0, stop="90")}
    vetoed = conf.combine(PAIR, signals, higher=_trend_line(200.0, -1.0))
    assert vetoed.direction == Direction.HOLD
    assert "vetoed" in vetoed.reason and "not above EMA 50" in vetoed.reason
    allowed = conf.combine(PAIR, signals, higher=_trend_line(100.0, 1.0))
    assert allowed.direction == Direction.BUY and "above EMA 50" in allowed.reason
    assert allowed.stop == Decimal("90")


def test_higher_timeframe_cannot_be_judged_so_no_entry() -> None:
    conf = Confluence({"trend": 1.0}, known=KNOWN, higher_timeframe=HigherTimeframeTrend(50))
    signals = {"trend": buy("trend", 1.0)}
    assert "no higher-timeframe candles" in conf.combine(PAIR, signals, higher=None).reason
    short = conf.combine(PAIR, signals, higher=window(_trend_line(100.0, 1.0), 0, 30))
    assert short.direction == Direction.HOLD and "warming up" in short.reason
    broken = _trend_line(100.0, 1.0)
    broken.close[-1] = math.nan
    assert conf.combine(PAIR, signals, higher=broken).direction == Direction.HOLD


def test_exits_are_never_vetoed_by_the_higher_timeframe() -> None:
    conf = Confluence({"trend": 1.0}, known=KNOWN, higher_timeframe=HigherTimeframeTrend(50))
    assert conf.combine(PAIR, {"trend": sell("trend", 1.0)}, higher=None).direction == Direction.SELL


def test_higher_timeframe_on_real_daily_trend(btc: Candles) -> None:
    # Rebuild 4-hour candles from the real hourly ones; late 2017 rose, late 2018 fell.
    def four_hourly(c: Candles) -> Candles:
        n = len(c) // 4 * 4
        o, h, lo, cl = (c.open[:n:4], c.high[:n].reshape(-1, 4).max(1), c.low[:n].reshape(-1, 4).min(1),
                        c.close[3:n:4])
        return make_candles(o, h, lo, cl, pair=c.pair, timeframe_s=4 * 3600)

    htf = HigherTimeframeTrend(50)
    rising = four_hourly(window(btc, 3000, 3800))   # Nov-Dec 2017
    falling = four_hourly(window(btc, 12000, 12800))  # Nov-Dec 2018
    assert rising.close[-1] > rising.close[0] and falling.close[-1] < falling.close[0]
    assert htf.allows_entry(rising)[0] is True
    assert htf.allows_entry(falling)[0] is False
