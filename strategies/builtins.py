"""The table of built-in strategies, by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from strategies import breakout, candlestick, mean_reversion, momentum, sma_cross, trend
from strategies.base import Candles, Signal
from strategies.common import DirectionArray
from strategies.spec import BuiltinStrategy


class _StrategyModule(Protocol):
    """What a built-in strategy module provides (each module satisfies this structurally)."""

    # read-only members, so a module function taking its own params type matches a callable taking Any
    @property
    def NAME(self) -> str: ...
    @property
    def evaluate(self) -> Callable[[Candles, Any], Signal]: ...
    @property
    def signals(self) -> Callable[[Candles, Any], DirectionArray]: ...
    @property
    def warmup(self) -> Callable[[Any], int]: ...


def _entry(module: _StrategyModule, params_type: type, summary: str) -> BuiltinStrategy:
    return BuiltinStrategy(
        name=module.NAME,
        summary=summary,
        params_type=params_type,
        evaluate=module.evaluate,
        signals=module.signals,
        warmup=module.warmup,
    )


BUILTINS: Mapping[str, BuiltinStrategy] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            _entry(trend, trend.TrendParams, "EMA cross confirmed by ADX, ATR stop"),
            _entry(mean_reversion, mean_reversion.MeanReversionParams, "RSI + Bollinger band dip buying"),
            _entry(momentum, momentum.MomentumParams, "MACD line / signal cross"),
            _entry(breakout, breakout.BreakoutParams, "Keltner channel breakout"),
            _entry(candlestick, candlestick.CandlesParams, "candlestick reversal patterns"),
            _entry(sma_cross, sma_cross.SmaCrossParams, "simple SMA crossover (reference)"),
        )
    }
)
BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTINS)
