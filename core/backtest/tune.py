"""What tuning and ``backtest --param`` share: parameter values from text, settings for one parameter set,
and the runner that backtests one set (fast mode, engine mode where fast mode cannot be exact).

The search itself is :mod:`core.backtest.tuning` (Optuna); the old exhaustive grid sweep is gone.
"""

from __future__ import annotations

from collections.abc import Callable

from core.backtest.data import Bars
from core.backtest.fast import FastUnsupported, run_fast
from core.backtest.model import BacktestResult, RunSpec
from core.settings.config import Settings
from strategies import builtin

Value = int | float | bool | str
Runner = Callable[[Settings, Bars, RunSpec], BacktestResult]


def parse_value(text: str) -> Value:
    """``10`` -> int, ``0.5`` -> float, ``true``/``false`` -> bool, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def with_params(settings: Settings, strategy: str, params: dict[str, Value]) -> Settings:
    """The settings with only ``strategy`` enabled and ``params`` over its configured parameters."""
    s = settings.strategies
    merged = {**s.params.get(strategy, {}), **params}
    builtin(strategy).params(merged)  # StrategyConfigError for a combination the strategy refuses
    strategies = s.model_copy(update={"enabled": (strategy,), "params": {**s.params, strategy: merged},
                                      "weights": {}})
    return settings.model_copy(update={"strategies": strategies})


def default_runner(engine: Runner | None) -> Runner:
    """Fast mode, falling back to ``engine`` (engine mode) where fast mode cannot be exact."""
    def run(settings: Settings, bars: Bars, spec: RunSpec) -> BacktestResult:
        try:
            return run_fast(settings, bars, spec)
        except FastUnsupported:
            if engine is None:
                raise
            return engine(settings, bars, spec)
    return run
