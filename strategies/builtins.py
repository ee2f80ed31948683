"""The table of built-in strategies, by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from strategies import breakout, candlestick, mean_reversion, momentum, sma_cross, trend
from strategies.spec import BuiltinStrategy


def _entry(module: object, params_type: type, summary: str) -> BuiltinStrategy:
    return BuiltinStrategy(
        name=getattr(module, "NAME"),
        summary=summary,
        params_type=params_type,
        evaluate=getattr(module, "evaluate"),
        signals=getattr(module, "signals"),
        warmup=getattr(module, "warmup"),
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
