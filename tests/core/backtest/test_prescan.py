"""Engine mode's quiet-candle shortcut changes nothing but the speed."""

from __future__ import annotations

import asyncio

from core.backtest.data import Bars
from core.backtest.model import RunSpec
from core.backtest.prescan import quiet_candles
from core.backtest.runner import run_engine
from strategies import load_strategies
from tests.core.backtest.conftest import cut, make_settings


def test_skipping_quiet_candles_gives_the_trades_of_scanning_every_candle(bundled: Bars) -> None:
    # three strategies in confluence, with the live risk sizing, stops and take-profits
    bars = cut(bundled, 11800, 12300)
    settings = make_settings("trend")
    settings = settings.model_copy(update={"strategies": settings.strategies.model_copy(
        update={"enabled": ("mean_reversion", "momentum", "trend"), "params": {}})})
    quiet = quiet_candles(load_strategies(settings.strategies), bars)
    assert quiet is not None and 0 < len(quiet) < len(bars)  # something is skipped, not everything

    skipped = asyncio.run(run_engine(settings, bars, RunSpec()))
    scanned = asyncio.run(run_engine(settings, bars, RunSpec(prescan=False)))
    assert len(scanned.trades) >= 2
    assert [t.key() for t in skipped.trades] == [t.key() for t in scanned.trades]
    assert [(t.exit_reason, t.pnl) for t in skipped.trades] == [(t.exit_reason, t.pnl) for t in scanned.trades]
    assert (skipped.equity == scanned.equity).all()


def test_a_strategy_without_a_vectorized_form_is_scanned_on_every_candle(bundled: Bars) -> None:
    from strategies.spec import BoundStrategy

    strategies = load_strategies(make_settings("sma_cross").strategies)
    member = strategies.members[0]
    external = BoundStrategy(name=member.name, evaluate=member.evaluate, signals=None, warmup=member.warmup,
                             params=member.params, origin="strategies/mine.py")
    strategies.members = (external,)
    assert quiet_candles(strategies, cut(bundled, 0, 100)) is None
