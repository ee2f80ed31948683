"""Fast mode and engine mode make the same trades, fill for fill, on real candles."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from core.backtest.data import Bars
from core.backtest.fast import run_fast
from core.backtest.model import BacktestResult, RunSpec, Trade
from core.settings.config import Settings
from tests.core.backtest.conftest import WHOLE_UNIT, reference_settings

pytestmark = pytest.mark.slow


def full_key(t: Trade) -> tuple[object, ...]:
    return (*t.key(), t.fees, t.pnl, t.pnl_pct, t.exit_reason, t.entry_time, t.exit_time)


def assert_equivalent(fast: BacktestResult, engine: BacktestResult) -> None:
    assert fast.exact, fast.notes
    assert [full_key(t) for t in fast.trades] == [full_key(t) for t in engine.trades]
    assert fast.end_equity == engine.end_equity
    assert np.array_equal(fast.equity_ts, engine.equity_ts)
    assert fast.equity == pytest.approx(engine.equity, rel=1e-12)
    assert np.array_equal(fast.in_position, engine.in_position)


def test_sma_cross_whole_units(engine_reference: tuple[Bars, BacktestResult]) -> None:
    bars, engine = engine_reference
    assert_equivalent(run_fast(reference_settings(5, 12), bars, WHOLE_UNIT), engine)


def test_stops_targets_slippage_and_partial_fills(
        engine_protected: tuple[Bars, Settings, RunSpec, BacktestResult]) -> None:
    bars, settings, spec, engine = engine_protected
    fast = run_fast(settings, bars, spec)
    assert_equivalent(fast, engine)
    reasons = Counter(t.exit_reason for t in engine.trades)
    assert reasons["stop"] and reasons["take_profit"] and reasons["exit"], reasons
    # 0.5 BTC against 0.1% of each candle's volume: some orders need several candles, at several prices
    assert any(t.entry_price != t.entry_price.quantize(Decimal("0.01")) for t in engine.trades)
    assert all(t.qty == Decimal("0.5") for t in engine.trades)
