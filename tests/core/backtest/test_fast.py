"""Fast mode's fill convention, fees, slippage, partial fills and refusals, without the engine.

That fast mode equals engine mode is checked in test_equivalence.py; here the rules themselves are
checked against the paper venue's documented arithmetic, and the shortcut against the general loop.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pytest

from core.backtest.data import Bars, synthetic
from core.backtest.fast import FastUnsupported, run_fast
from core.backtest.model import BacktestResult, RunSpec
from core.settings.config import Settings
from strategies.sma_cross import SmaCrossParams, signals
from tests.core.backtest.conftest import WHOLE_UNIT, cut, make_settings, reference_settings

TICK = Decimal("0.01")


def _keys(result: BacktestResult) -> list[tuple[object, ...]]:
    return [(*t.key(), t.fees, t.pnl, t.exit_reason) for t in result.trades]


def _tick(value: Decimal, rounding: str) -> Decimal:
    return (value / TICK).to_integral_value(rounding=rounding) * TICK


@pytest.mark.parametrize("paper", [
    {},
    {"slippage_bps": "7", "impact_bps": "50", "volume_share": "0.1"},
    {"starting_balances": {"USD": "15000"}, "taker_fee": "0.0026"},
])
@pytest.mark.parametrize("qty", ["1", "0.37"])
def test_shortcut_agrees_with_the_general_loop(paper: dict[str, object], qty: str) -> None:
    settings = make_settings("sma_cross", {"fast": 8, "slow": 21},
                             paper={"starting_balances": {"USD": "1000000"}, **paper})
    bars = synthetic(15_000, seed=7)
    spec = RunSpec(sizing="fixed", qty=Decimal(qty))
    quick, general = run_fast(settings, bars, spec), run_fast(settings, bars, spec, shortcut=False)
    assert len(quick.trades) > 150
    assert _keys(quick) == _keys(general)
    assert quick.equity == pytest.approx(general.equity, rel=1e-9)
    assert np.array_equal(quick.in_position, general.in_position)


def test_signal_on_close_fills_at_next_open_with_fees_on_both_sides(bundled: Bars) -> None:
    bars = cut(bundled, 2500, 4500)
    settings = reference_settings(10, 30)
    result = run_fast(settings, bars, WHOLE_UNIT)
    sig = signals(bars.arrays, SmaCrossParams(10, 30))
    assert len(result.trades) > 20
    for t in result.trades:
        assert sig[t.entry_bar - 1] == 1 and t.entry_price == bars.price(t.entry_bar, "open")
        assert t.entry_time == bars.time(t.entry_bar)
        if t.closed:
            assert t.exit_bar is not None
            assert sig[t.exit_bar - 1] == -1 and t.exit_price == bars.price(t.exit_bar, "open")
            step = Decimal("1e-8")
            fee = (t.entry_price * Decimal("0.001")).quantize(step) + (t.exit_price * Decimal("0.001")).quantize(step)
            assert t.fees == fee
            assert t.pnl == t.exit_price - t.entry_price - fee


def test_last_close_fills_at_the_signal_candles_close(bundled: Bars) -> None:
    bars = cut(bundled, 2500, 4500)
    spec = RunSpec(sizing="fixed", qty=Decimal(1), fill_on="last_close")
    result = run_fast(reference_settings(10, 30), bars, spec)
    sig = signals(bars.arrays, SmaCrossParams(10, 30))
    for t in result.trades:
        assert sig[t.entry_bar] == 1 and t.entry_price == bars.price(t.entry_bar, "close")
        if t.exit_bar is not None:
            assert sig[t.exit_bar] == -1 and t.exit_price == bars.price(t.exit_bar, "close")


def test_slippage_moves_prices_against_the_taker_to_the_tick(bundled: Bars) -> None:
    bars = cut(bundled, 2500, 4500)
    settings = make_settings("sma_cross", {"fast": 10, "slow": 30},
                             paper={"slippage_bps": "10", "impact_bps": "0", "volume_share": "1",
                                    "starting_balances": {"USD": "100000"}})
    result = run_fast(settings, bars, WHOLE_UNIT)
    for t in result.trades:
        assert t.entry_price == _tick(bars.price(t.entry_bar, "open") * Decimal("1.001"), ROUND_CEILING)
        if t.exit_bar is not None:
            assert t.exit_price == _tick(bars.price(t.exit_bar, "open") * Decimal("0.999"), ROUND_FLOOR)


def test_an_order_larger_than_the_volume_share_fills_over_several_candles() -> None:
    bars = synthetic(3000, seed=2)
    settings = make_settings("sma_cross", {}, paper={"volume_share": "0.002", "slippage_bps": "0", "impact_bps": "0",
                                                     "starting_balances": {"USD": "100000"}})
    result = run_fast(settings, bars, RunSpec(sizing="fixed", qty=Decimal("0.6")))
    spread = [t for t in result.trades if t.exit_bar is not None and t.entry_price != bars.price(t.entry_bar, "open")]
    assert spread, "some entry should have needed more than one candle"
    for t in result.trades:
        assert t.qty == Decimal("0.6")  # filled in full, in pieces
    t = spread[0]
    assert min(bars.price(t.entry_bar + i, "open") for i in range(4)) <= t.entry_price <= max(
        bars.price(t.entry_bar + i, "open") for i in range(4))


def test_a_candle_without_volume_fills_nothing() -> None:
    bars = synthetic(2000, seed=4)
    sig = signals(bars.arrays, SmaCrossParams())
    buy = int(np.flatnonzero(sig == 1)[0])
    bars.arrays.volume[buy + 1] = 0.0
    settings = make_settings("sma_cross", {}, paper={"slippage_bps": "0", "impact_bps": "0",
                                                     "starting_balances": {"USD": "100000"}})
    result = run_fast(settings, bars, WHOLE_UNIT)
    assert result.trades[0].entry_bar == buy + 2
    assert result.trades[0].entry_price == bars.price(buy + 2, "open")


def test_cooldown_after_a_loss_skips_the_next_entries(bundled: Bars) -> None:
    bars = cut(bundled, 2500, 6500)
    loose = run_fast(reference_settings(5, 12), bars, WHOLE_UNIT)
    cooled = make_settings("sma_cross", {"fast": 5, "slow": 12}, paper={"starting_balances": {"USD": "1000000"}},
                           risk={"cooldown_after_loss_s": 6 * 3600})
    strict = run_fast(cooled, bars, WHOLE_UNIT)
    assert len(strict.trades) < len(loose.trades)
    for before, after in itertools.pairwise(strict.trades):
        if before.pnl < 0 and before.exit_time is not None:
            assert (after.entry_time - before.exit_time).total_seconds() >= 6 * 3600 - 3600


@pytest.mark.parametrize(("change", "spec", "needle"), [
    ({}, RunSpec(sizing="risk"), "sizing"),
    ({"strategies": {"enabled": ["sma_cross", "trend"]}}, WHOLE_UNIT, "one strategy"),
    ({"risk": {"trailing_stop_pct": "0.05"}}, WHOLE_UNIT, "trailing"),
    ({"strategies": {"enabled": ["sma_cross"], "higher_timeframe": "4h"}}, WHOLE_UNIT, "higher_timeframe"),
])
def test_configurations_fast_mode_cannot_reproduce_are_refused(change: dict[str, dict[str, object]], spec: RunSpec,
                                                              needle: str) -> None:
    settings = Settings(**{"strategies": {"enabled": ["sma_cross"]}, **change})
    with pytest.raises(FastUnsupported, match=needle):
        run_fast(settings, synthetic(500, seed=1), spec)


def test_a_breaker_the_engine_would_trip_is_reported() -> None:
    settings = make_settings("sma_cross", {"fast": 3, "slow": 5}, risk={"max_drawdown": "0.02"},
                             paper={"starting_balances": {"USD": "12000"}})
    result = run_fast(settings, synthetic(5000, seed=5), WHOLE_UNIT)
    assert not result.exact
    assert any("would have paused entries" in n and "drawdown" in n for n in result.notes)
