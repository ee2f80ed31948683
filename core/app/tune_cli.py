"""``tradectl tune``: an Optuna study over one strategy's parameters, checked out of sample.

Parses options and prints; the study is :mod:`core.backtest.tuning`, its storage
:mod:`core.backtest.studies`. Shares the backtest's options and helpers with
:mod:`core.app.backtest_cli`. Mounted by :func:`register`. Exit codes: 0 ok, 1 failure, 2 usage.
"""

from __future__ import annotations

import math
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.app.backtest_cli import (
    EXIT_FAIL,
    CashOpt,
    ConfigOpt,
    CsvOpt,
    FeeOpt,
    FillOpt,
    FractionOpt,
    FromOpt,
    ImpactOpt,
    LenientOpt,
    PairOpt,
    QtyOpt,
    QuietOpt,
    ShareOpt,
    SizingOpt,
    SlipOpt,
    TimeframeOpt,
    ToOpt,
    _bars,
    _fail,
    _load,
    _overrides,
    _quiet_logs,
    _when,
)
from core.settings.config import DEFAULT_CONFIG, Settings

if TYPE_CHECKING:
    from core.backtest.studies import Away
    from core.backtest.tuning import Outcome


def tune(grid: Annotated[list[str], typer.Option("--grid", help=(
    "STRATEGY.PARAM=V1,V2,... or STRATEGY.PARAM=LOW..HIGH[:STEP] (repeat for each parameter)."))],
         config: ConfigOpt = None, pair: PairOpt = None, timeframe: TimeframeOpt = None, start: FromOpt = None,
         end: ToOpt = None, csv: CsvOpt = None, sizing: SizingOpt = None, qty: QtyOpt = None,
         fraction: FractionOpt = None, fill_on: FillOpt = None, fee: FeeOpt = None, slippage_bps: SlipOpt = None,
         impact_bps: ImpactOpt = None, volume_share: ShareOpt = None, cash: CashOpt = None,
         lenient: LenientOpt = False,
         metric: Annotated[str | None, typer.Option("--metric", help=(
             "sharpe | return | profit_factor | expectancy | win_rate | max_drawdown | trades."))] = None,
         trials: Annotated[int | None, typer.Option("--trials", "--samples", min=1, help=(
             "Trials this run adds to the study (default: the grid's size for a list-only grid, else 50)."))] = None,
         seed: Annotated[int | None, typer.Option("--seed", min=0, help=(
             "Sampler seed (default: backtest.seed); one process with one seed repeats its study exactly."))] = None,
         min_trades: Annotated[int | None, typer.Option("--min-trades", min=1, help=(
             "Rank sets with fewer closed in-sample trades last."))] = None,
         study: Annotated[str | None, typer.Option("--study", help=(
             "Study name: create it, or join/continue it (other processes or machines with the same storage). "
             "Default: a new study per run."))] = None,
         storage: Annotated[str | None, typer.Option("--storage", help=(
             "Study storage URL (default: from database.url: SQLite beside the database file, or the PostgreSQL "
             "database itself)."))] = None,
         jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help=(
             "Worker processes sharing the study on this machine."))] = 1,
         oos: Annotated[float, typer.Option("--oos", min=0.0, max=0.8, help=(
             "Share of the candles, the latest, held out as the out-of-sample window (0: none)."))] = 0.3,
         chunks: Annotated[int, typer.Option("--chunks", min=1, max=20, help=(
             "In-sample steps a trial reports for pruning (1: no pruning)."))] = 3,
         output: Annotated[Path | None, typer.Option("--output", help=(
             "Overlay file for the best set (default: backtest.overlay)."), dir_okay=False)] = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Rank only; write nothing.")] = False,
         top: Annotated[int, typer.Option("--top", min=1, help="Rows of the ranking to print.")] = 10,
         quiet: QuietOpt = False) -> None:
    """Search a strategy's parameters with Optuna, show in- and out-of-sample results, write the best set.

    The best set goes to the tuned overlay (default data/tuned.toml), merged over your config at
    start-up; your own config file is never written. See docs/backtesting.md.
    """
    _quiet_logs()
    overrides = _overrides(pair=pair, timeframe=timeframe, strategy=None, param=None, sizing=sizing, qty=qty,
                           fraction=fraction, fill_on=fill_on, fee=fee, slippage_bps=slippage_bps,
                           impact_bps=impact_bps, volume_share=volume_share, mode=None)
    settings = _load(config, overrides, cash)
    from core.backtest import tuning
    from core.backtest.api import run_mode
    from core.backtest.fast import unsupported_reason
    from core.backtest.model import RunSpec
    from core.backtest.studies import (
        OptunaMissing,
        StudyStorageError,
        describe,
        open_storage,
        require_optuna,
        storage_url,
    )
    from core.backtest.tune import default_runner
    from core.settings.overlay import write_overlay
    from strategies.errors import StrategyConfigError

    try:
        require_optuna()
    except OptunaMissing as exc:
        raise _fail(str(exc), EXIT_FAIL) from None
    try:
        space = tuning.parse_space(grid)
        _check_name(study)
        url = storage_url(settings.database.url, storage)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    target = (output or settings.backtest.overlay).resolve()
    env_config = os.environ.get("TRADECTL_CONFIG")
    own = [p.resolve() for p in (config, DEFAULT_CONFIG, Path(env_config) if env_config else None) if p is not None]
    if target in own:
        raise _fail(f"refusing to write tuning results to your config file {target}; pick another --output")
    bars = _bars(settings, csv, _when(start, "--from"), _when(end, "--to"), lenient)
    try:
        windows = tuning.split(bars, oos)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    spec = RunSpec.from_settings(settings.backtest)
    chosen_metric = metric or settings.backtest.metric
    size = space.grid_size
    plan = tuning.Plan(space=space, metric=chosen_metric, study=study or _default_name(space.strategy),
                       storage=url, trials=trials or (size if size is not None else 50),
                       seed=settings.backtest.seed if seed is None else seed, chunks=chunks,
                       min_trades=min_trades or settings.backtest.min_trades, jobs=jobs)
    try:
        slow = unsupported_reason(tuning.settings_for(settings, space.strategy, _first(space)), spec)
    except (ValueError, StrategyConfigError) as exc:
        if "unknown strategy" in str(exc):
            raise _fail(str(exc)) from None
        slow = None  # that combination is refused; the study reports it
    if slow is not None:
        typer.echo(f"note: fast mode cannot run this study ({slow}); each trial runs in the engine. "
                   "--sizing fixed or fraction runs in seconds.", err=True)

    def engine(s: Settings, b: Any, sp: RunSpec) -> Any:
        return run_mode(s, b, sp, "engine", progress=False)

    ins, outs = windows.in_sample, windows.out_of_sample
    attrs = {"space": space.signature(), "metric": chosen_metric,
             "data": f"{bars.pair} {settings.trading.timeframe} {_span(ins)}", "candles": tuning.candles_digest(ins),
             "settings": tuning.fixed_settings(settings, space, spec, plan.min_trades)}
    try:
        open_storage(url)[1]()  # an unreachable storage is one line before anything runs
    except StudyStorageError as exc:
        raise _fail(str(exc), EXIT_FAIL) from None
    few = f" (the grid has {size} combinations: no more are run)" if size is not None and plan.trials > size else ""
    typer.echo(f"study {plan.study!r} in {describe(url)}: {plan.trials} trials{few}"
               f"{f' in {jobs} processes' if jobs > 1 else ''}; ranked by {chosen_metric}")
    warm = windows.warmup(settings.trading.history_bars)
    typer.echo(f"in-sample: {_span(ins)}, {len(ins)} candles; out-of-sample: "
               + (f"{_span(outs)}, {len(outs)} candles, after {warm} in-sample candles of warm-up"
                  if outs is not None else "none (--oos 0)"))

    def say(line: str) -> None:
        if not quiet:
            typer.echo(line)

    runner = default_runner(engine)
    try:
        outcome = tuning.run_study(settings, windows, spec, plan, runner, attrs, say, top)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except RuntimeError as exc:
        raise _fail(str(exc), EXIT_FAIL) from None
    if outcome.exhausted:
        typer.echo(f"the grid is exhausted: this run ran {outcome.ran} of the {plan.trials} trials asked; every one of "
                   f"its {size} combinations has been tried or is running (list more values, or search a range "
                   "LOW..HIGH)")
    _print_ranking(outcome, chosen_metric, top, outs is not None)
    best = outcome.best
    if best is None:
        raise _fail("no parameter set produced enough trades to rank; widen the grid or lower --min-trades", EXIT_FAIL)
    if dry_run:
        return
    for _ in range(3):  # the overlay holds the study's best when it is written, not the one ranked earlier
        latest = tuning.best_value(plan)
        if latest is None or latest <= best.score:
            break
        typer.echo("a better set finished in another process while this run ranked; ranking the study again")
        outcome = tuning.rank_study(settings, windows, spec, plan, runner, outcome.sampler, top)
        _print_ranking(outcome, chosen_metric, top, outs is not None)
        best = outcome.best
        assert best is not None  # a better complete trial exists
    oos_text = (f"; out-of-sample {_num(best.out_score)} ({best.out.trades} trades, {best.out.return_pct:.2f}%)"
                if best.out is not None else "")
    header = [f"strategy {space.strategy}, study {plan.study!r}: {chosen_metric} in-sample {best.score:.4g}{oos_text}",
              f"data: {attrs['data']} in-sample" + (f", {_span(outs)} out-of-sample" if outs is not None else ""),
              "search: " + " ".join(grid)]
    write_overlay(target, space.strategy, best.params, header)
    typer.echo(f"best {space.strategy}: {_fmt(best.params)} -> {target} (merged at start-up; your config file is "
               "untouched)")
    if space.strategy not in settings.strategies.enabled and space.strategy not in {
            e.name for e in settings.strategies.external}:
        typer.echo(f"note: {space.strategy} is not in strategies.enabled; the tuned values apply once it is")


MAX_STUDY_NAME = 512  # Optuna's study_name column


def _check_name(name: str | None) -> None:
    """A study name a user can type again: not blank, no control characters, within Optuna's limit."""
    if name is None:
        return
    if not name.strip():
        raise ValueError("--study: the name is empty; leave --study out for a new study per run")
    if not name.isprintable():
        raise ValueError(f"--study {name!r}: control characters (line breaks, tabs...) are not allowed")
    if len(name) > MAX_STUDY_NAME:
        raise ValueError(f"--study: the name has {len(name)} characters; at most {MAX_STUDY_NAME}")


def _first(space: Any) -> dict[str, Any]:
    return {a.name: (a.choices[0] if a.choices else (int(a.low) if a.integer else a.low)) for a in space.axes}


def _default_name(strategy: str) -> str:
    return f"{strategy}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _span(bars: Any) -> str:
    end = bars.time(len(bars) - 1) + timedelta(seconds=bars.timeframe_s)
    return f"{bars.time(0):%Y-%m-%d %H:%M} -> {end:%Y-%m-%d %H:%M} UTC"


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _num(value: float | None, spec: str = ".4g") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _print_ranking(outcome: Outcome, metric: str, top: int, with_oos: bool) -> None:
    tried = outcome.complete + outcome.pruned + len(outcome.skipped)
    notes = "".join(f", {n} {'trial' if n == 1 else 'trials'} {text}" for n, text in (
        (outcome.repeats, "repeated a set"), (outcome.failed, "failed or lost (not counted)"),
        (outcome.running, "still running (not counted)")) if n)
    typer.echo(f"{tried} sets tried, {len(outcome.skipped)} skipped, {outcome.pruned} pruned{notes} "
               f"(sampler: {outcome.sampler}); ranked by in-sample {metric}")
    typer.echo(f"{'#':>3}  {'params':<28} {'IS score':>9} {'return%':>8} {'trades':>6} {'maxDD%':>7}"
               + (f"  {'OOS score':>9} {'return%':>8} {'trades':>6}" if with_oos else ""))
    for i, row in enumerate(outcome.rows[:top], 1):
        s = row.stats
        line = (f"{i:>3}  {_fmt(row.params):<28} {_num(row.score):>9} {_num(s.get('return_pct'), '.2f'):>8} "
                f"{s.get('trades', 0):>6} {_num(s.get('max_drawdown_pct'), '.2f'):>7}")
        if with_oos:
            o = row.out
            line += (f"  {_num(row.out_score):>9} {o.return_pct:>8.2f} {o.trades:>6}" if o is not None else
                     f"  {'-':>9} {'-':>8} {'-':>6}")
        typer.echo(line)
    for combo, why in outcome.skipped[:5]:
        typer.echo(f"  skipped {_fmt(combo)}: {why}")
    for away in outcome.away:
        typer.echo(f"  {_away(away, datetime.now(UTC))}")


def _away(away: Away, now: datetime) -> str:
    """What is known of a running trial whose process is on another machine: when it was last heard from."""
    from core.backtest.studies import BEAT_S

    where = f"trial {away.number} runs on {away.host}"
    if away.heard is None:
        return f"{where}; it cannot be checked from here and wrote no sign of life (an older version); not counted"
    silent = max(timedelta(0), now - away.heard)
    ago = _duration(silent)
    if silent.total_seconds() <= 3 * BEAT_S:
        return f"{where}, last heard from {ago} ago; not counted until it finishes"
    return (f"{where}, not heard from for {ago} (a running trial is heard from every {BEAT_S:g} s): its process has "
            "most likely stopped, which cannot be checked from here, so it is left as it is; not counted")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def register(app: typer.Typer) -> None:
    """Add ``tune`` to the ``tradectl`` app."""
    app.command("tune")(tune)
