"""Backtesting and parameter tuning on the engine's own code path (see docs/backtesting.md).

Two modes, one set of rules:

- engine mode (:func:`run_engine`): the service's engine, built by
  :func:`core.trading.assembly.build_engine`, fed history through the replay feed on a simulated clock,
  filling on the paper venue; results read back through the engine's accounting;
- fast mode (:func:`run_fast`): the same per-candle rules over precomputed TA-Lib signals, for one
  strategy with fixed or fractional sizing; checked trade for trade against engine mode and
  against backtesting.py in the tests.

:func:`run_backtest` picks the mode, :func:`compute` summarises, :mod:`core.backtest.tuning` tunes (Optuna)
and :func:`core.settings.overlay.write_overlay` stores the winner beside (never inside) the user's configuration.

Names are imported on first use: :func:`core.settings.config.load_settings` reads the tuned overlay through
:mod:`core.settings.overlay`, and that must not pull in the engine, TA-Lib or numpy (nor import
:mod:`core.settings.config` back while it is still loading).
"""

from __future__ import annotations

from core.runtime.lazy import lazy_exports

_EXPORTS = {
    "api": ("Outcome", "choose_mode", "prepare_bars", "run_backtest", "write_outputs"),
    "data": ("Bars", "load_bars", "screen", "synthetic"),
    "fast": ("FastUnsupported", "run_fast", "unsupported_reason"),
    "model": ("BacktestResult", "Pause", "RunSpec", "Trade", "TradeTable"),
    "runner": ("run_engine",),
    "sizing": ("PlainSizing",),
    "stats": ("BacktestStats", "compute"),
}
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
