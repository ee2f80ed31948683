"""Backtesting and parameter tuning on the engine's own code path (see docs/backtesting.md).

Two modes, one set of rules:

- engine mode (:func:`run_engine`): the service's engine, built by
  :func:`core.trading_core.build_engine`, fed history through the replay feed on a simulated clock,
  filling on the paper venue; results read back through the engine's accounting;
- fast mode (:func:`run_fast`): the same per-candle rules over precomputed TA-Lib signals, for one
  strategy with fixed or fractional sizing; checked trade for trade against engine mode and
  against backtesting.py in the tests.

:func:`run_backtest` picks the mode, :func:`compute` summarises, :func:`sweep` tunes over a grid and
:func:`write_overlay` stores the winner beside (never inside) the user's configuration.

Names are imported on first use: :func:`core.config.load_settings` reads the tuned overlay through
:mod:`core.backtest.overlay`, and that must not pull in the engine, TA-Lib or numpy (nor import
:mod:`core.config` back while it is still loading).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "core.backtest.api": ("Outcome", "choose_mode", "prepare_bars", "run_backtest", "write_outputs"),
    "core.backtest.data": ("Bars", "load_bars", "screen", "synthetic"),
    "core.backtest.fast": ("FastUnsupported", "run_fast", "unsupported_reason"),
    "core.backtest.model": ("BacktestResult", "Pause", "RunSpec", "Trade", "TradeTable"),
    "core.backtest.overlay": ("OverlayError", "apply_overlay", "read_overlay", "write_overlay"),
    "core.backtest.runner": ("run_engine",),
    "core.backtest.sizing": ("PlainSizing",),
    "core.backtest.stats": ("BacktestStats", "compute"),
    "core.backtest.tune": ("Grid", "TuneResult", "parse_grid", "sweep"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'core.backtest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
