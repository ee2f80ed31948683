"""Built-in strategies on real candles: they trade both ways, and both forms agree bar for bar."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.base import Candles, Direction, Signal
from strategies.builtins import BUILTINS
from strategies.spec import BuiltinStrategy
from tests.strategies.candle_data import make_candles, window, with_close

NAMES = sorted(BUILTINS)
CODES = {Direction.BUY: 1, Direction.SELL: -1, Direction.HOLD: 0}


def per_bar_codes(entry: BuiltinStrategy, c: Candles, indices: range | list[int]) -> dict[int, int]:
    params = entry.default_params()
    return {i: CODES[entry.evaluate(window(c, 0, i + 1), params).direction] for i in indices}


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_buys_and_sells_on_real_hourly_candles(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    codes = entry.signals(btc, entry.default_params())
    assert codes.dtype == np.int8 and codes.shape == (len(btc),)
    assert (codes == 1).sum() > 0, f"{name} never buys on 20k real candles"
    assert (codes == -1).sum() > 0, f"{name} never sells on 20k real candles"
    assert set(np.unique(codes)) <= {-1, 0, 1}


@pytest.mark.parametrize("name", NAMES)
def test_per_bar_equals_vectorized_on_every_prefix_of_real_data(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    c = window(btc, 0, 2500)
    vector = entry.signals(c, entry.default_params())
    per_bar = per_bar_codes(entry, c, range(len(c)))
    mismatches = [i for i in range(len(c)) if per_bar[i] != vector[i]]
    assert mismatches == []
    assert (vector != 0).any()


@pytest.mark.parametrize("name", NAMES)
def test_per_bar_equals_vectorized_across_the_whole_history(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    vector = entry.signals(btc, entry.default_params())
    rng = np.random.default_rng(7)
    active = np.flatnonzero(vector)
    sample = sorted(set(rng.choice(len(btc), 150, replace=False)) | set(rng.choice(active, 100, replace=False)))
    per_bar = per_bar_codes(entry, btc, [int(i) for i in sample])
    assert {i: per_bar[i] for i in per_bar if per_bar[i] != vector[i]} == {}


@pytest.mark.parametrize("name", NAMES)
def test_per_bar_equals_vectorized_when_a_price_is_missing(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    c = with_close(window(btc, 5000, 5400), 300, math.nan)
    vector = entry.signals(c, entry.default_params())
    per_bar = per_bar_codes(entry, c, range(len(c)))
    assert [i for i in range(len(c)) if per_bar[i] != vector[i]] == []
    assert not vector[300:].any()


walks = st.lists(st.floats(min_value=-0.04, max_value=0.04), min_size=1, max_size=90)


@settings(max_examples=40, deadline=None)
@given(steps=walks, gaps=st.lists(st.floats(min_value=-0.01, max_value=0.01), min_size=90, max_size=90))
def test_per_bar_equals_vectorized_on_random_walks(steps: list[float], gaps: list[float]) -> None:
    close = 100.0 * np.exp(np.cumsum(steps))
    prev = np.r_[100.0, close[:-1]]
    open_ = prev * (1 + np.asarray(gaps[: len(close)]))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    c = make_candles(open_, high, low, close)
    for name in NAMES:
        entry = BUILTINS[name]
        vector = entry.signals(c, entry.default_params())
        per_bar = per_bar_codes(entry, c, range(len(c)))
        assert [per_bar[i] for i in range(len(c))] == vector.tolist(), name


@pytest.mark.parametrize("name", NAMES)
def test_too_short_a_window_holds_and_says_so(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    params = entry.default_params()
    need = entry.warmup(params)
    short = entry.evaluate(window(btc, 1000, 1000 + need - 1), params)
    assert short.direction == Direction.HOLD
    assert "warming up" in short.reason and str(need) in short.reason
    empty = entry.evaluate(window(btc, 0, 0), params)
    assert empty.direction == Direction.HOLD


@pytest.mark.parametrize("name", NAMES)
def test_warm_up_is_enough_for_every_indicator(btc: Candles, name: str) -> None:
    # At exactly the warm-up length the strategy judges the bar: no "warming up", no NaN in the reason.
    entry = BUILTINS[name]
    params = entry.default_params()
    need = entry.warmup(params)
    for start in range(0, 20000, 997):
        sig = entry.evaluate(window(btc, start, start + need), params)
        assert "warming up" not in sig.reason
        assert "nan" not in sig.reason.lower()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("where", [-1, -40])
def test_non_finite_prices_give_hold(btc: Candles, name: str, bad: float, where: int) -> None:
    entry = BUILTINS[name]
    c = with_close(window(btc, 3000, 3300), where, bad)
    sig = entry.evaluate(c, entry.default_params())
    assert sig.direction == Direction.HOLD
    assert "NaN" in sig.reason


def _signals_at_active_bars(entry: BuiltinStrategy, c: Candles, direction: int,
                            limit: int = 40) -> list[tuple[Signal, float]]:
    params = entry.default_params()
    codes = entry.signals(c, params)
    out = []
    for i in np.flatnonzero(codes == direction)[:limit]:
        w = window(c, max(0, int(i) - 499), int(i) + 1)
        out.append((entry.evaluate(w, params), float(c.close[i])))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_buy_signals_carry_sound_strength_stop_and_target(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    for sig, close in _signals_at_active_bars(entry, window(btc, 8000, 14000), 1):
        assert sig.direction == Direction.BUY and sig.strategy == name and sig.pair == "BTC/USD"
        assert 0.0 < sig.strength <= 1.0
        assert sig.reason
        if sig.stop is not None:
            assert isinstance(sig.stop, Decimal) and Decimal(0) < sig.stop < Decimal(repr(close))
        if sig.take_profit is not None:
            assert isinstance(sig.take_profit, Decimal) and sig.take_profit > Decimal(repr(close))


@pytest.mark.parametrize("name", NAMES)
def test_sell_signals_have_a_reason_and_no_entry_levels(btc: Candles, name: str) -> None:
    entry = BUILTINS[name]
    for sig, _ in _signals_at_active_bars(entry, window(btc, 8000, 14000), -1):
        assert sig.direction == Direction.SELL and 0.0 < sig.strength <= 1.0 and sig.reason
        assert sig.stop is None and sig.take_profit is None


@pytest.mark.parametrize("name", ["trend", "mean_reversion", "momentum", "breakout", "candles"])
def test_stop_loss_strategies_suggest_a_stop_on_buys(btc: Candles, name: str) -> None:
    found = _signals_at_active_bars(BUILTINS[name], window(btc, 8000, 14000), 1, limit=10)
    assert found and all(sig.stop is not None for sig, _ in found)
