"""The statistics ``tradectl backtest`` prints, against backtesting.py's own on the same trades.

Set-up as in test_reference.py (SMA crossover, one whole unit, 0.1% commission, no slippage), on 2,000
bundled candles without zero-volume fillers. Where the two define a figure alike they must agree:
end equity, return, win rate, expectancy, maximum drawdown. Three are defined differently and are
left out: backtesting.py's profit factor sums returns in percent (ours PnL), its exposure counts the
exit candle (ours the closes that found a position), and its buy and hold starts after the indicators'
warm-up (ours at the first candle).
"""

from __future__ import annotations

import warnings

import pytest

from core.backtest.api import run_backtest
from core.backtest.data import Bars
from tests.core.backtest.conftest import WHOLE_UNIT, cut, reference_settings
from tests.core.backtest.test_reference import SmaCross

try:
    import pandas as pd
    from backtesting import Backtest
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("this test needs backtesting.py: pip install -e '.[test,reference]'") from exc


def test_figures_defined_alike_agree_with_backtesting_py(bundled: Bars) -> None:
    bars = cut(bundled, 13100, 15100)
    a = bars.arrays
    assert (a.volume > 0).all()  # backtesting.py would fill on a candle without trades
    frame = pd.DataFrame({"Open": a.open, "High": a.high, "Low": a.low, "Close": a.close, "Volume": a.volume},
                         index=pd.to_datetime(a.ts, unit="s", utc=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Backtest(frame, SmaCross, cash=1_000_000, commission=0.001, exclusive_orders=True,
                          trade_on_close=False, finalize_trades=False).run(fast=10, slow=30)
    ours = run_backtest(reference_settings(10, 30), bars, WHOLE_UNIT, "fast", progress=False).stats
    assert ours.trades == theirs["# Trades"] > 30  # closed ones: finalize_trades=False leaves an open one out
    assert ours.end_equity == pytest.approx(theirs["Equity Final [$]"], abs=1e-6)
    assert ours.return_pct == pytest.approx(theirs["Return [%]"], abs=1e-9)
    assert ours.win_rate_pct == pytest.approx(theirs["Win Rate [%]"], abs=1e-9)
    assert ours.expectancy == pytest.approx(theirs["_trades"].PnL.mean(), abs=1e-6)
    assert ours.max_drawdown_pct == pytest.approx(-theirs["Max. Drawdown [%]"], abs=1e-9)
