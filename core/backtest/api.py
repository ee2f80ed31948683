"""One call per command: pick the mode, run it, summarise. The CLI only parses and prints.

:func:`run_backtest` is what ``tradectl backtest`` does: candles in, a :class:`Outcome` (result,
statistics, which mode ran and why) out. It is synchronous; engine mode runs its own event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from core.backtest.data import Bars, load_bars, screen
from core.backtest.fast import run_fast, unsupported_reason
from core.backtest.model import BacktestResult, RunSpec
from core.backtest.progress import Progress
from core.backtest.report import write_equity_png, write_trades_csv
from core.backtest.runner import run_engine, run_engines, start_equity
from core.backtest.stats import BacktestStats, compute
from core.settings.config import Settings
from core.settings.settings_models import TIMEFRAMES

ModeChoice = Literal["auto", "engine", "fast"]


@dataclass(frozen=True, slots=True)
class Outcome:
    result: BacktestResult
    stats: BacktestStats
    mode_reason: str


@dataclass(frozen=True, slots=True)
class PortfolioOutcome:
    """A run over several pairs: the portfolio's result and statistics, and each pair's."""

    result: BacktestResult
    stats: BacktestStats
    pairs: tuple[tuple[BacktestResult, BacktestStats], ...]
    mode_reason: str


@dataclass(frozen=True, slots=True)
class Written:
    trades_csv: Path
    equity_png: Path


def choose_mode(settings: Settings, spec: RunSpec, requested: ModeChoice) -> tuple[str, str]:
    """(mode, why). ``fast`` asked for where it cannot be exact raises ValueError with the reason."""
    reason = unsupported_reason(settings, spec)
    if requested == "fast":
        if reason is not None:
            raise ValueError(f"fast mode cannot reproduce the engine here: {reason}")
        return "fast", "requested"
    if requested == "engine":
        return "engine", "requested"
    if reason is None:
        return "fast", "same trades as the engine for this configuration"
    return "engine", f"fast mode cannot reproduce this configuration: {reason}"


def prepare_bars(settings: Settings, pair: str, timeframe_s: int, *, csv: Path | None, start: datetime | None,
                 end: datetime | None, lenient: bool = False) -> Bars:
    """The candles for a run (strict unless ``lenient``), screened as the engine's market data would."""
    outlier = settings.trading.outlier_max_move
    bars = load_bars(pair, timeframe_s, csv=csv, start=start, end=end, lenient=lenient)
    return screen(bars, float(outlier) if outlier > 0 else None)


def run_mode(settings: Settings, bars: Bars, spec: RunSpec, mode: str, *,
             progress: bool | None = None) -> BacktestResult:
    if mode == "fast":
        return run_fast(settings, bars, spec)
    bar = Progress(len(bars), "backtest", enabled=progress)
    return asyncio.run(run_engine(settings, bars, spec, progress=bar))


def run_backtest(settings: Settings, bars: Bars, spec: RunSpec, requested: ModeChoice = "auto", *,
                 progress: bool | None = None) -> Outcome:
    if start_equity(settings, bars) <= 0:
        base, quote = bars.pair.split("/")
        raise ValueError(f"paper.starting_balances hold nothing in {quote} or {base}, the currencies of {bars.pair}; "
                         f"give starting cash in {quote} with --cash")
    mode, why = choose_mode(settings, spec, requested)
    result = run_mode(settings, bars, spec, mode, progress=progress)
    if requested == "auto" and result.mode == "fast" and not result.exact:
        why = "fast mode met a case it does not reproduce exactly: " + "; ".join(result.notes)
        result = run_mode(settings, bars, spec, "engine", progress=progress)
    if bars.dropped:
        result.notes.append("candles left out as the engine refuses them: "
                            + ", ".join(f"{k} {v}" for k, v in bars.dropped.items()))
    stats = compute(result, float(bars.arrays.close[spec.warmup]), float(bars.arrays.close[-1]))
    return Outcome(result=result, stats=stats, mode_reason=why)


def run_portfolio(settings: Settings, series: tuple[Bars, ...], spec: RunSpec, requested: ModeChoice = "auto", *,
                  progress: bool | None = None) -> PortfolioOutcome:
    """Several pairs in one engine, sharing cash, exposure limits and the open-positions limit as the
    service does (fast mode simulates one pair: asking for it here is a ValueError)."""
    if requested == "fast":
        raise ValueError("fast mode runs one pair; a portfolio runs in the engine (--mode engine or auto)")
    if start_equity(settings, series) <= 0:
        quote = series[0].pair.split("/")[1]
        raise ValueError(f"paper.starting_balances hold nothing in {quote} or the pairs' base currencies; "
                         f"give starting cash in {quote} with --cash")
    bar = Progress(sum(len(b) for b in series), "backtest", enabled=progress)
    run = asyncio.run(run_engines(settings, series, spec, progress=bar))
    per_pair = []
    for bars, result in zip(series, run.results, strict=True):
        if bars.dropped:
            result.notes.append("candles left out as the engine refuses them: "
                                + ", ".join(f"{k} {v}" for k, v in bars.dropped.items()))
        per_pair.append((result, compute(result, float(bars.arrays.close[0]), float(bars.arrays.close[-1]))))
    # buy and hold of the portfolio: the pairs' mean, each bought with an equal share at its first close
    hold = sum(float(b.arrays.close[-1]) / float(b.arrays.close[0]) for b in series) / len(series)
    stats = compute(run.portfolio, 1.0, hold)
    why = "requested" if requested == "engine" else f"a portfolio of {len(series)} pairs runs in the engine"
    return PortfolioOutcome(result=run.portfolio, stats=stats, pairs=tuple(per_pair), mode_reason=why)


def _timeframe(bars: Bars) -> str:
    names = {v: k for k, v in TIMEFRAMES.items()}
    return names.get(bars.timeframe_s, f"{bars.timeframe_s}s")


def output_stem(bars: Bars, strategies: tuple[str, ...]) -> str:
    """``BTC-USD_1h_20180101-20191001_sma_cross``: what ran, on what, from the first open to the last close."""
    first, end = bars.time(0), bars.time(len(bars) - 1) + timedelta(seconds=bars.timeframe_s)
    return f"{bars.pair.replace('/', '-')}_{_timeframe(bars)}_{first:%Y%m%d}-{end:%Y%m%d}_{'+'.join(strategies)}"


def chart_title(bars: Bars, strategies: tuple[str, ...]) -> str:
    """Short enough to leave room for the final equity the chart prints on the right."""
    names = "+".join(strategies) if len("+".join(strategies)) <= 24 else f"{len(strategies)} strategies"
    return f"{bars.pair} {_timeframe(bars)} {names}"


def write_outputs(outcome: Outcome, out_dir: Path, stem: str, title: str, quote: str) -> Written:
    written = Written(trades_csv=out_dir / f"{stem}_trades.csv", equity_png=out_dir / f"{stem}_equity.png")
    write_trades_csv(written.trades_csv, outcome.result.trades)
    write_equity_png(written.equity_png, outcome.result, title, quote)
    return written
