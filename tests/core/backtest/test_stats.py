"""The statistics a backtest prints, on results whose right answers are known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from core.backtest.model import BacktestResult, Trade
from core.backtest.stats import compute, first_breach, sharpe
from core.trading import accounting

T0 = datetime(2019, 1, 1, tzinfo=UTC)
H = 3600


def trade(entry: int, exit_: int | None, pnl: str, fees: str = "1") -> Trade:
    return Trade(pair="BTC/USD", entry_bar=entry, exit_bar=exit_, entry_time=T0 + timedelta(hours=entry),
                 exit_time=T0 + timedelta(hours=exit_) if exit_ is not None else None, qty=Decimal(1),
                 entry_price=Decimal(100), exit_price=Decimal(100), fees=Decimal(fees), pnl=Decimal(pnl),
                 pnl_pct=Decimal(0), exit_reason="exit" if exit_ is not None else "open")


def result(equity: list[float], trades: list[Trade], in_position: list[bool]) -> BacktestResult:
    n = len(equity)
    return BacktestResult(mode="fast", pair="BTC/USD", timeframe_s=H, start_equity=Decimal("1000"),
                          end_equity=Decimal(repr(equity[-1])), trades=trades,
                          equity_ts=int(T0.timestamp()) + H * np.arange(1, n + 1, dtype=np.int64),
                          equity=np.asarray(equity, dtype=np.float64), in_position=np.asarray(in_position), bars=n)


def test_trade_figures_drawdown_and_exposure() -> None:
    r = result([1000, 1100, 900, 950, 1200, 1150],
               [trade(0, 1, "100"), trade(1, 2, "-50"), trade(2, 4, "30"), trade(5, None, "-5")],
               [True, True, False, True, True, False])
    s = compute(r, first_close=100.0, last_close=150.0)
    assert (s.trades, s.open_trades, s.wins) == (3, 1, 2)
    assert s.win_rate_pct == pytest.approx(200 / 3)
    assert s.profit_factor == pytest.approx(130 / 50)
    assert s.expectancy == pytest.approx(80 / 3)
    assert s.fees == pytest.approx(4)
    assert s.return_pct == pytest.approx(15.0)
    assert s.buy_hold_pct == pytest.approx(50.0)
    assert s.max_drawdown == pytest.approx(200)
    assert s.max_drawdown_pct == pytest.approx(200 / 1100 * 100)
    # the peak is the close of the second candle, the trough the close of the third
    assert (s.drawdown_peak, s.drawdown_trough) == (T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    assert s.exposure_pct == pytest.approx(400 / 6)
    assert s.start == T0 and s.bars == 6


def test_sharpe_is_the_accounting_formula() -> None:
    rng = np.random.default_rng(3)
    equity = 1000 * np.cumprod(1 + rng.normal(0.0002, 0.01, 500))
    points = [(T0 + timedelta(hours=i), Decimal(repr(float(v)))) for i, v in enumerate(equity)]
    assert sharpe(equity, H) == pytest.approx(accounting.sharpe(points, H), rel=1e-9)
    assert sharpe(np.full(10, 1000.0), H) is None  # no variation, no ratio


def test_undefined_figures_rank_last() -> None:
    s = compute(result([1000, 1000, 1000], [], [False] * 3), 100.0, 100.0)
    assert s.win_rate_pct is None and s.profit_factor is None and s.sharpe is None
    assert s.metric("sharpe") == float("-inf")
    assert s.metric("max_drawdown") == 0.0  # negated: smaller drawdowns rank higher
    assert dict(s.rows("USD"))["win rate"] == "n/a"


def test_breakers_found_on_the_curve() -> None:
    r = result([1000, 990, 940, 1000, 1010], [], [False] * 5)
    breach = first_breach(r, daily_loss_limit=0.05, max_drawdown=0.5, timezone="UTC")
    assert breach == "daily loss 6.00% at 2019-01-01 03:00 UTC"
    assert first_breach(r, daily_loss_limit=0.5, max_drawdown=0.5, timezone="UTC") is None
