"""Shared candles, settings and engine runs for the backtest tests.

Engine-mode runs are the slow part (a database write per candle), so each is made once per session
and shared by the tests that compare against it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from core.backtest.data import Bars, load_bars, to_arrays
from core.backtest.model import BacktestResult, RunSpec
from core.backtest.runner import run_engine
from core.settings.config import Settings

# Hourly bundled candles 13100..13600 (2018-12-29 .. 2019-01-19): no zero-volume candle inside.
REFERENCE_SLICE = (13100, 13600)
# 2018-10-06 .. 2018-10-23: mean_reversion stops, takes profit and exits on signal there, and with a
# 0.1% volume share its 0.5 BTC orders fill across several candles.
PROTECTED_SLICE = (11800, 12200)
WHOLE_UNIT = RunSpec(sizing="fixed", qty=Decimal(1))


def make_settings(strategy: str, params: dict[str, Any] | None = None, *, paper: dict[str, Any] | None = None,
                  risk: dict[str, Any] | None = None) -> Settings:
    """Settings for one strategy; breakers loose so that no run pauses unless a test wants it."""
    return Settings(**{
        "strategies": {"enabled": [strategy], "params": {strategy: params or {}}},
        "paper": {"starting_balances": {"USD": "10000"}, **(paper or {})},
        "risk": {"daily_loss_limit": "1", "max_drawdown": "1", **(risk or {})},
    })


def reference_settings(fast: int, slow: int) -> Settings:
    """Whole units, no slippage, a 0.1% commission: the set-up another backtester can reproduce."""
    return make_settings("sma_cross", {"fast": fast, "slow": slow},
                         paper={"slippage_bps": "0", "impact_bps": "0", "taker_fee": "0.001", "maker_fee": "0.001",
                                "volume_share": "1", "starting_balances": {"USD": "1000000"}},
                         risk={"cooldown_after_loss_s": 0})


def cut(bars: Bars, lo: int, hi: int) -> Bars:
    assert bars.candles is not None
    candles = bars.candles[lo:hi]
    return Bars(arrays=to_arrays(bars.pair, bars.timeframe_s, candles), candles=candles, source=bars.source)


@pytest.fixture(scope="session")
def bundled() -> Bars:
    """The 20,111 bundled hourly BTC/USD candles (Coinbase, 2017-07 .. 2019-10)."""
    return load_bars("BTC/USD", 3600)


@pytest.fixture(scope="session")
def traded(bundled: Bars) -> Bars:
    """The bundled candles without their 28 zero-volume filler hours.

    The paper venue fills nothing in a candle without trades (the order waits for the next one);
    backtesting.py fills every order at the next open. Without the fillers both see the same market.
    """
    assert bundled.candles is not None
    candles = tuple(c for c in bundled.candles if c.volume > 0)
    return Bars(arrays=to_arrays("BTC/USD", 3600, candles), candles=candles, source=bundled.source)


@pytest.fixture(scope="session")
def engine_reference(bundled: Bars) -> tuple[Bars, BacktestResult]:
    """sma_cross 5/12 in whole units through the real engine, on :data:`REFERENCE_SLICE`."""
    bars = cut(bundled, *REFERENCE_SLICE)
    return bars, asyncio.run(run_engine(reference_settings(5, 12), bars, WHOLE_UNIT))


@pytest.fixture(scope="session")
def engine_protected(bundled: Bars) -> tuple[Bars, Settings, RunSpec, BacktestResult]:
    """mean_reversion with stops, targets, slippage, impact and partial fills, through the engine."""
    bars = cut(bundled, *PROTECTED_SLICE)
    settings = make_settings("mean_reversion", paper={"volume_share": "0.001"})
    spec = RunSpec(sizing="fixed", qty=Decimal("0.5"))
    return bars, settings, spec, asyncio.run(run_engine(settings, bars, spec))
