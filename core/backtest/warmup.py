"""Warm runs: a backtest that starts with history, as a strategy running all along would have it.

A run is cold at its first candle: an SMA 50 says nothing for 50 candles, so a window backtested on
its own trades later, and differently, than the same strategy running through it. With
``RunSpec.warmup = w`` a run is given ``w`` candles before the ones it reports on. Both modes compute
indicators and signals over all of them, as the engine's window would hold them, and place no order
before candle ``w``: fast mode drops the earlier signals; engine mode feeds the warm-up candles with
entries paused (the ``PauseEntries`` intent an operator would send) and resumes them at candle ``w``.

What is not carried over from the warm-up: positions (there are none), cash (the configured
starting balances) and the result's accounting. :func:`trading_part` cuts the result to the candles
from ``w`` on, so its trades, bar numbers, equity curve and statistics read as those of a run given
only those candles: bar 0 is candle ``w``, and the starting equity is the starting balances at its
close. The engine's breakers do see the warm-up's equity (a base-currency balance held from the
start moves it): their day start and peak include it, as they would in a service running through
those candles; fast mode's check of where the breakers would trip does the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from core.backtest.data import Bars
from core.backtest.fasttrades import FastTrades
from core.backtest.model import BacktestResult, RunSpec, Trade, TradeTable
from core.backtest.portfolio import start_equity
from core.settings.config import Settings


def check(spec: RunSpec, series: Sequence[Bars]) -> None:
    """ValueError when ``spec.warmup`` cannot apply to these candles."""
    if not spec.warmup:
        return
    if spec.warmup < 0:
        raise ValueError(f"warm-up must be a number of candles, not {spec.warmup}")
    if len(series) != 1:
        raise ValueError("a warm-up applies to a run of one pair")
    if spec.warmup >= len(series[0]):
        raise ValueError(f"a warm-up of {spec.warmup} candles leaves none of the {len(series[0])} to trade")


def _shift(trades: Sequence[Trade], w: int) -> Sequence[Trade]:
    if isinstance(trades, FastTrades):
        return trades.shifted(w)
    return [replace(t, entry_bar=t.entry_bar - w, exit_bar=None if t.exit_bar is None else t.exit_bar - w)
            for t in trades]


def trading_part(result: BacktestResult, bars: Bars, settings: Settings, warmup: int) -> BacktestResult:
    """``result`` of a run over ``bars`` cut to the candles from ``warmup`` on (see the module docstring)."""
    t = result.table
    if t.entry_bar.size and int(t.entry_bar.min()) < warmup:
        raise RuntimeError(f"a trade entered at candle {int(t.entry_bar.min())}, inside the warm-up")
    table = TradeTable(entry_bar=t.entry_bar - warmup, exit_bar=np.where(t.exit_bar >= 0, t.exit_bar - warmup, -1),
                       pnl=t.pnl, cost=t.cost, fees=t.fees)
    keep = result.equity_ts >= int(bars.arrays.ts[warmup]) + bars.timeframe_s  # closes from candle ``warmup`` on
    out = BacktestResult(mode=result.mode, pair=result.pair, timeframe_s=result.timeframe_s,
                         start_equity=start_equity(settings, bars, warmup), end_equity=result.end_equity,
                         equity_ts=result.equity_ts[keep], equity=result.equity[keep],
                         in_position=result.in_position[warmup:], bars=result.bars - warmup,
                         trades=_shift(result.trades, warmup), table=table)
    out.elapsed_s, out.exact = result.elapsed_s, result.exact
    out.notes, out.pauses, out.params = list(result.notes), list(result.pauses), dict(result.params)
    return out
