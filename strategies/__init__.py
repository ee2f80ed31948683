"""Trading strategies: pure functions of a candle window that return a typed signal.

Built-ins (``trend``, ``mean_reversion``, ``momentum``, ``breakout``, ``candles``, ``sma_cross``)
each have a per-bar ``evaluate(candles, params) -> Signal`` about the last candle and a vectorized
``signals(candles, params) -> int8 array`` (+1 BUY, -1 SELL, 0 HOLD per bar) for backtests, equal
bar for bar. Context is spot and long-only: BUY enters, SELL exits.

:func:`load_strategies` turns configuration into a :class:`StrategySet` that runs each strategy
safely (:class:`StrategyRunner`) and combines the votes (:class:`Confluence`). External strategy
files load only when pinned by SHA-256 (see :mod:`strategies.external` for the module contract).
"""

from strategies.base import Candles, Direction, Signal
from strategies.breakout import BreakoutParams
from strategies.builtins import BUILTIN_NAMES, BUILTINS
from strategies.candlestick import CandlesParams
from strategies.config import StrategyConfig
from strategies.confluence import Confluence, HigherTimeframeTrend
from strategies.errors import StrategyConfigError, StrategyError
from strategies.external import ExternalSpec, file_sha256, load_external
from strategies.mean_reversion import MeanReversionParams
from strategies.momentum import MomentumParams
from strategies.params import params_from_dict, params_to_dict
from strategies.registry import build_params, builtin, load_strategies
from strategies.runner import RunResult, StrategyRunner, StrategyStats
from strategies.scanner import ScanResult, StrategySet
from strategies.sma_cross import SmaCrossParams
from strategies.spec import BoundStrategy, BuiltinStrategy
from strategies.trend import TrendParams

__all__ = [
    "BUILTINS",
    "BUILTIN_NAMES",
    "BoundStrategy",
    "BreakoutParams",
    "BuiltinStrategy",
    "Candles",
    "CandlesParams",
    "Confluence",
    "Direction",
    "ExternalSpec",
    "HigherTimeframeTrend",
    "MeanReversionParams",
    "MomentumParams",
    "RunResult",
    "ScanResult",
    "Signal",
    "SmaCrossParams",
    "StrategyConfig",
    "StrategyConfigError",
    "StrategyError",
    "StrategyRunner",
    "StrategySet",
    "StrategyStats",
    "TrendParams",
    "build_params",
    "builtin",
    "file_sha256",
    "load_external",
    "load_strategies",
    "params_from_dict",
    "params_to_dict",
]
