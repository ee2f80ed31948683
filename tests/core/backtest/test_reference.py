"""Our backtest against an independent one: backtesting.py, on real candles, trade for trade.

Set-up both can express: a simple SMA crossover (fast above slow on a candle's close buys at the
next open; fast below slow sells at the next open), long only, one whole unit per trade, no
slippage, a 0.1% commission on entry and exit. backtesting.py's SMAs are pandas rolling means,
not our TA-Lib ones, so the signals are computed independently too.

backtesting.py never changes the fill price for commission (it charges it on the side), so its
entry and exit prices must equal ours exactly, and its commission must equal our fees.
backtesting.py is a test-only dependency (the ``reference`` extra; ``make test`` installs it).
"""

from __future__ import annotations

import warnings
from decimal import Decimal

import numpy as np
import pytest

from core.backtest.data import Bars
from core.backtest.fast import run_fast
from core.backtest.model import BacktestResult
from tests.core.backtest.conftest import WHOLE_UNIT, reference_settings

try:
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("the reference test needs backtesting.py: pip install -e '.[test,reference]'") from exc

Key = tuple[int, int, Decimal, Decimal, Decimal]


def _sma(values: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(values).rolling(n).mean().to_numpy()


class SmaCross(Strategy):  # type: ignore[misc]
    fast = 10
    slow = 30

    def init(self) -> None:
        self.fast_line = self.I(_sma, self.data.Close, self.fast)
        self.slow_line = self.I(_sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.fast_line, self.slow_line):
            if not self.position:  # long only, one position: a second up-cross while long changes nothing
                self.buy(size=1)
        elif crossover(self.slow_line, self.fast_line):
            self.position.close()


def reference_trades(bars: Bars, fast: int, slow: int) -> tuple[list[Key], list[float]]:
    """backtesting.py's trades as (entry bar, exit bar, size, entry price, exit price), and commissions."""
    a = bars.arrays
    frame = pd.DataFrame({"Open": a.open, "High": a.high, "Low": a.low, "Close": a.close, "Volume": a.volume},
                         index=pd.to_datetime(a.ts, unit="s", utc=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(frame, SmaCross, cash=1_000_000, commission=0.001, exclusive_orders=True,
                         trade_on_close=False, finalize_trades=True).run(fast=fast, slow=slow)
    rows = list(stats._trades.itertuples())
    keys = [(int(r.EntryBar), int(r.ExitBar), Decimal(int(r.Size)), Decimal(repr(float(r.EntryPrice))),
             Decimal(repr(float(r.ExitPrice)))) for r in rows]
    return keys, [float(r.Commission) for r in rows]


def assert_same_trades(ours: BacktestResult, bars: Bars, fast: int, slow: int) -> None:
    ref, commissions = reference_trades(bars, fast, slow)
    closed = [t for t in ours.trades if t.closed]
    assert len(closed) > 10
    assert [t.key() for t in closed] == ref[:len(closed)]
    assert [float(t.fees) for t in closed] == pytest.approx(commissions[:len(closed)], abs=1e-6)
    # backtesting.py closes a position still open at the end at the last candle's open
    # (finalize_trades); ours stays open, marked at the last close. The entries must agree.
    rest = ref[len(closed):]
    still_open = [t for t in ours.trades if not t.closed]
    assert len(rest) == len(still_open) <= 1
    for mine, theirs in zip(still_open, rest, strict=True):
        assert (mine.entry_bar, mine.qty, mine.entry_price) == (theirs[0], theirs[2], theirs[3])


@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (5, 12), (20, 50)])
def test_fast_mode_matches_backtesting_py_on_all_bundled_candles(traded: Bars, fast: int, slow: int) -> None:
    result = run_fast(reference_settings(fast, slow), traded, WHOLE_UNIT)
    assert result.exact and not result.notes
    assert_same_trades(result, traded, fast, slow)


@pytest.mark.slow
def test_engine_mode_matches_backtesting_py(engine_reference: tuple[Bars, BacktestResult]) -> None:
    bars, result = engine_reference
    assert result.mode == "engine"
    assert_same_trades(result, bars, 5, 12)
