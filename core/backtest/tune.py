"""Parameter sweeps: every combination of a grid (or a seeded sample of it), ranked by one metric.

A grid names one strategy's parameters, ``sma_cross.fast=5,10,20`` and ``sma_cross.slow=50,100``.
Each combination is backtested with that strategy alone (fast mode when the configuration allows
it, see :mod:`core.backtest.fast`, else engine mode) and ranked by the chosen metric; ties keep grid
order, so the same grid, data and seed always give the same ranking. Combinations the strategy
refuses (``fast`` not below ``slow``) are reported as skipped, not run.

The winner is written to the overlay (:mod:`core.backtest.overlay`), never to the user's own file.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.backtest.data import Bars
from core.backtest.fast import FastUnsupported, run_fast
from core.backtest.model import BacktestResult, RunSpec
from core.backtest.stats import METRICS, BacktestStats, compute
from core.config import Settings
from strategies import builtin
from strategies.errors import StrategyConfigError

Value = int | float | bool | str
Runner = Callable[[Settings, Bars, RunSpec], BacktestResult]


@dataclass(frozen=True, slots=True)
class Grid:
    strategy: str
    axes: dict[str, tuple[Value, ...]]

    @property
    def size(self) -> int:
        size = 1
        for values in self.axes.values():
            size *= len(values)
        return size


@dataclass(frozen=True, slots=True)
class TuneRow:
    params: dict[str, Value]
    stats: BacktestStats
    score: float
    mode: str
    exact: bool


@dataclass(slots=True)
class TuneResult:
    strategy: str
    metric: str
    rows: list[TuneRow] = field(default_factory=list)  # best first
    skipped: list[tuple[dict[str, Value], str]] = field(default_factory=list)
    tried: int = 0

    @property
    def best(self) -> TuneRow | None:
        return self.rows[0] if self.rows else None


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


def parse_grid(specs: Sequence[str]) -> Grid:
    """``["sma_cross.fast=5,10", "sma_cross.slow=50,100"]`` -> a :class:`Grid`; ValueError naming the bad part."""
    strategy = ""
    axes: dict[str, tuple[Value, ...]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        name, dot, param = key.strip().partition(".")
        if not (sep and dot and name and param and values.strip()):
            raise ValueError(f"grid {spec!r}: write STRATEGY.PARAM=V1,V2,... (e.g. sma_cross.fast=5,10,20)")
        if strategy and name != strategy:
            raise ValueError(f"a grid tunes one strategy at a time; got {strategy!r} and {name!r}")
        strategy = name
        if param in axes:
            raise ValueError(f"grid names {name}.{param} twice")
        parsed = tuple(parse_value(v) for v in values.split(",") if v.strip())
        axes[param] = tuple(dict.fromkeys(parsed))  # drop repeats, keep order
    if not axes:
        raise ValueError("no grid given: --grid STRATEGY.PARAM=V1,V2,...")
    builtin(strategy)  # an unknown strategy fails here, naming the built-ins
    return Grid(strategy, axes)


def combinations(grid: Grid, samples: int | None = None, seed: int = 0) -> list[dict[str, Value]]:
    """The grid's combinations in a fixed order; with ``samples``, a seeded random subset of them."""
    names = list(grid.axes)
    combos = [dict(zip(names, values)) for values in itertools.product(*grid.axes.values())]
    if samples is not None and samples < len(combos):
        picked = sorted(random.Random(seed).sample(range(len(combos)), samples))
        combos = [combos[i] for i in picked]
    return combos


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


def sweep(settings: Settings, bars: Bars, spec: RunSpec, grid: Grid, *, metric: str = "sharpe",
         samples: int | None = None, seed: int = 0, runner: Runner | None = None,
         min_trades: int = 1, on_progress: Callable[[int, int], None] | None = None) -> TuneResult:
    """Backtest every combination and rank by ``metric`` (see :data:`core.backtest.stats.METRICS`).

    A combination with fewer than ``min_trades`` closed trades ranks last: a Sharpe ratio from one
    lucky trade is not a result.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    run = runner or default_runner(None)
    combos = combinations(grid, samples, seed)
    out = TuneResult(strategy=grid.strategy, metric=metric, tried=len(combos))
    first, last = float(bars.arrays.close[0]), float(bars.arrays.close[-1])
    scored: list[tuple[float, int, TuneRow]] = []
    for i, combo in enumerate(combos):
        try:
            run_settings = with_params(settings, grid.strategy, combo)
        except StrategyConfigError as exc:
            out.skipped.append((combo, str(exc)))
            continue
        result = run(run_settings, bars, spec)
        stats = compute(result, first, last)
        score = stats.metric(metric) if stats.trades >= min_trades else float("-inf")
        scored.append((score, i, TuneRow(combo, stats, score, result.mode, result.exact)))
        if on_progress is not None:
            on_progress(i + 1, len(combos))
    scored.sort(key=lambda item: (-item[0], item[1]))
    out.rows = [row for _, _, row in scored]
    return out
