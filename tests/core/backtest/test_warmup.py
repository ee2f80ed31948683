"""Warm runs: a window backtested after the candles before it, as a strategy running through it would
trade it, and reported as if it had been given that window alone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from core.backtest.data import Bars
from core.backtest.fast import run_fast
from core.backtest.model import BacktestResult, RunSpec, Trade
from core.backtest.runner import run_engine, run_engines
from core.backtest.stats import compute
from core.backtest.tune import default_runner
from core.backtest.tuning import Plan, parse_space, run_study, split
from tests.core.backtest.conftest import PROTECTED_SLICE, WHOLE_UNIT, cut, make_settings, reference_settings
from tests.core.backtest.test_equivalence import assert_equivalent

# 2018-12-29 .. 2019-01-23 hourly. sma_cross 10/50 running through all of it is flat from its exit at
# candle 133 until it enters again at candle 164 (signal on 163): the window from candle W on starts
# with that entry 14 candles in, before a cold SMA 50 over the window can say anything.
SLICE = (13100, 13700)
W = 150
SLOW = 50
CASH = Decimal(1_000_000)


@pytest.fixture(scope="module")
def bars(bundled: Bars) -> Bars:
    return cut(bundled, *SLICE)


def _shifted(t: Trade, w: int) -> Trade:
    return replace(t, entry_bar=t.entry_bar - w, exit_bar=None if t.exit_bar is None else t.exit_bar - w)


def _stats(result: BacktestResult, bars: Bars, first: int = 0) -> object:
    return compute(result, float(bars.arrays.close[first]), float(bars.arrays.close[-1]))


@pytest.mark.parametrize("shortcut", [True, False])
def test_a_warm_window_trades_on_its_first_candles_where_a_cold_one_cannot(bars: Bars, shortcut: bool) -> None:
    settings = reference_settings(10, SLOW)
    warm = run_fast(settings, bars, replace(WHOLE_UNIT, warmup=W), shortcut=shortcut)
    cold = run_fast(settings, cut(bars, W, len(bars)), WHOLE_UNIT, shortcut=shortcut)
    assert warm.trades[0].entry_bar == 14 and warm.trades[0].entry_time == bars.time(W + 14)
    assert all(t.entry_bar >= SLOW for t in cold.trades)  # an SMA 50 needs 50 candles of the window
    assert [t.key() for t in warm.trades] != [t.key() for t in cold.trades]


@pytest.mark.parametrize("shortcut", [True, False])
def test_a_warm_window_is_the_continuous_run_after_it_counted_as_a_run_of_the_window_alone(
        bars: Bars, shortcut: bool) -> None:
    settings = reference_settings(10, SLOW)
    whole = run_fast(settings, bars, WHOLE_UNIT, shortcut=shortcut)
    assert whole.trades[0].entry_bar < W and not whole.in_position[W - 1]  # it traded before, and is flat at W
    assert all((t.exit_bar is not None and t.exit_bar < W) or t.entry_bar > W for t in whole.trades)
    warm = run_fast(settings, bars, replace(WHOLE_UNIT, warmup=W), shortcut=shortcut)
    cold = run_fast(settings, cut(bars, W, len(bars)), WHOLE_UNIT, shortcut=shortcut)
    # no trade before the window; from there on, the continuous run's trades (whole units, ample cash)
    assert list(warm.trades) == [_shifted(t, W) for t in whole.trades if t.entry_bar > W]
    assert np.array_equal(warm.table.entry_bar, [t.entry_bar for t in warm.trades])
    assert np.array_equal(warm.in_position, whole.in_position[W:])
    # equity starts from the starting balance: the continuous run's, less what it made before
    made_before = whole.equity[W - 1] - float(CASH)
    assert warm.equity == pytest.approx(whole.equity[W:] - made_before, rel=1e-12)
    assert warm.end_equity - CASH == sum((t.pnl for t in warm.trades), Decimal(0))
    # ... and the accounting of a run given the window alone
    assert warm.start_equity == cold.start_equity == CASH
    assert warm.bars == cold.bars == len(bars) - W
    assert np.array_equal(warm.equity_ts, cold.equity_ts) and warm.in_position.size == cold.in_position.size
    warm_stats, cold_stats = _stats(warm, bars, W), _stats(cold, cut(bars, W, len(bars)))
    for name in ("start", "end", "bars", "start_equity", "buy_hold_pct"):
        assert getattr(warm_stats, name) == getattr(cold_stats, name), name


def test_a_base_balance_is_valued_at_the_first_traded_close(bars: Bars) -> None:
    settings = make_settings("sma_cross", {"fast": 10, "slow": SLOW},
                             paper={"starting_balances": {"USD": "100000", "BTC": "2"}})
    warm = run_fast(settings, bars, replace(WHOLE_UNIT, warmup=W))
    assert warm.start_equity == Decimal(100000) + 2 * bars.price(W, "close")
    assert warm.start_equity == run_fast(settings, cut(bars, W, len(bars)), WHOLE_UNIT).start_equity
    assert warm.trades[0].entry_bar == 14


def test_a_warm_up_must_leave_candles_to_trade(bars: Bars) -> None:
    with pytest.raises(ValueError, match="leaves none"):
        run_fast(reference_settings(10, SLOW), bars, replace(WHOLE_UNIT, warmup=len(bars)))
    with pytest.raises(ValueError, match="one pair"):
        asyncio.run(run_engines(reference_settings(10, SLOW), (bars, bars), replace(WHOLE_UNIT, warmup=W)))


@pytest.mark.slow
def test_engine_and_fast_mode_agree_on_a_warm_run(bars: Bars, bundled: Bars) -> None:
    settings = reference_settings(10, SLOW)
    spec = replace(WHOLE_UNIT, warmup=W)
    engine = asyncio.run(run_engine(settings, bars, spec))
    assert engine.trades[0].entry_bar == 14 and not engine.pauses  # the warm-up's pause is not a breaker's
    for shortcut in (True, False):
        assert_equivalent(run_fast(settings, bars, spec, shortcut=shortcut), engine)
    assert engine.start_equity == CASH and engine.bars == len(bars) - W
    # stops, take-profits, slippage and fills over several candles (see conftest.engine_protected)
    protected = cut(bundled, *PROTECTED_SLICE)
    settings = make_settings("mean_reversion", paper={"volume_share": "0.001"})
    spec = RunSpec(sizing="fixed", qty=Decimal("0.5"), warmup=120)
    engine = asyncio.run(run_engine(settings, protected, spec))
    assert len(engine.trades) >= 3
    assert_equivalent(run_fast(settings, protected, spec), engine)


def test_tune_ranks_out_of_sample_by_a_warm_run(bars: Bars, tmp_path: Path) -> None:
    settings = reference_settings(10, SLOW)
    windows = split(bars, 0.25)  # 450 in-sample candles: all of them warm the out-of-sample run up
    assert windows.out_of_sample is not None and windows.warmup(settings.trading.history_bars) == 450
    space = parse_space(["sma_cross.fast=10", f"sma_cross.slow={SLOW}"])
    plan = Plan(space=space, metric="return", study="warm", storage=f"sqlite:///{tmp_path}/study.db", trials=1)
    attrs = {"space": space.signature(), "metric": "return", "data": "BTC/USD"}
    outcome = run_study(settings, windows, WHOLE_UNIT, plan, default_runner(None), attrs, lambda _: None)
    out = outcome.rows[0].out
    assert out is not None
    oos = windows.out_of_sample
    warm = run_fast(settings, bars, replace(WHOLE_UNIT, warmup=450))
    cold = run_fast(settings, oos, WHOLE_UNIT)
    assert out == _stats(warm, bars, 450)
    assert (out.trades, out.return_pct) != (_stats(cold, oos).trades, _stats(cold, oos).return_pct)
    assert out.bars == len(oos) and out.start == oos.time(0)
