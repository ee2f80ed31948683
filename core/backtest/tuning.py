"""``tradectl tune`` on Optuna: a seeded search over one strategy's parameters, judged out of sample.

The candles are split in time: the first part (**in-sample**) is what the search optimises; the last
``oos_share`` (**out-of-sample**) is never seen by it and is backtested only for the best sets, so the
user sees whether a set that shone in-sample still works on later data.

The out-of-sample run is warm (:mod:`core.backtest.warmup`): it is given the last in-sample candles
before the window, as many as the engine hands a strategy (``trading.history_bars``, or the whole
in-sample window when that is shorter), so indicators and signals at the window's first candle are
those of the strategy running all along. No order is placed on those candles; trades, bar numbers,
equity (from the starting balances) and statistics count from the window's first candle. The
in-sample window starts cold, as the data does.

Each trial backtests the in-sample window in ``chunks`` growing steps (the first third, two thirds,
all of it, by default) and reports the metric after each one; Optuna's median pruner stops a trial
whose partial result is below the median of earlier trials at the same step, so hopeless sets cost
a fraction of a full run. The trial's value is the metric over the whole in-sample window (-inf when
it has fewer than ``min_trades`` closed trades).

Sampler: a grid of listed values small enough for the trial budget is tried exhaustively (Optuna's
``GridSampler``, in the order of the seed the study was created with, shared by every process that joins
it), no more trials than it has combinations left; otherwise, or with ranges (``fast=5..50``), Optuna's
TPE sampler, each trial seeded by the seed and its trial number. A study run by one process is
reproducible from its seed, and a run that continues a study draws new sets; several processes
(``--jobs``, or other machines joining with ``--study``) share what they learn and are not reproducible.
A repeated parameter set reuses the earlier trial's value instead of running again. A trial whose
process died on this machine is marked failed ("lost") by the next run, which runs its set again
(:func:`~core.backtest.studies.fail_lost_trials`).

Optuna is imported only here, in :mod:`core.backtest.samplers` and in :mod:`core.backtest.studies`, and
only when a study runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from core.backtest.data import Bars, to_arrays
from core.backtest.model import RunSpec
from core.backtest.samplers import median_pruner, per_trial_tpe, stamped_grid, untried
from core.backtest.stats import METRICS, BacktestStats, compute
from core.backtest.studies import Away, away, beating, fail_lost_trials, open_storage, require_optuna, study_lock
from core.backtest.tune import Runner, Value, parse_value, with_params
from core.settings.config import Settings
from exchanges.errors import TradectlError
from strategies import BUILTIN_NAMES
from strategies.errors import StrategyConfigError

if TYPE_CHECKING:
    from optuna import Study, Trial
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

Say = Callable[[str], None]
STAT_ATTRS = ("trades", "return_pct", "win_rate_pct", "profit_factor", "max_drawdown_pct", "sharpe")


@dataclass(frozen=True, slots=True)
class Axis:
    """One parameter's values: listed ``choices``, or a range ``low..high`` (``step`` optional)."""

    name: str
    choices: tuple[Value, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: Trial) -> Value:
        if self.choices:
            return cast(Value, trial.suggest_categorical(self.name, list(self.choices)))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, step=self.step)

    def text(self) -> str:
        if self.choices:
            return f"{self.name}={','.join(str(c) for c in self.choices)}"
        bounds = (f"{int(self.low)}..{int(self.high)}" if self.integer else f"{self.low!r}..{self.high!r}")
        return f"{self.name}={bounds}" + (f":{self.step:g}" if self.step else "")


@dataclass(frozen=True, slots=True)
class Space:
    strategy: str
    axes: tuple[Axis, ...]

    @property
    def grid_size(self) -> int | None:
        """The number of combinations when every axis is a list, else None."""
        if any(not a.choices for a in self.axes):
            return None
        return math.prod(len(a.choices) for a in self.axes)

    def grid(self) -> dict[str, list[Value]]:
        return {a.name: list(a.choices) for a in self.axes}

    def signature(self) -> str:
        return f"{self.strategy}: " + " ".join(a.text() for a in self.axes)


def _axis(name: str, text: str) -> Axis:
    lo, dots, rest = text.partition("..")
    if not dots:
        values = tuple(dict.fromkeys(parse_value(v) for v in text.split(",") if v.strip()))
        if not values:
            raise ValueError(f"{name}: no values")
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(f"{name}={text}: values must be finite numbers")
        return Axis(name, choices=values)
    hi, colon, step_text = rest.partition(":")
    bounds = [parse_value(lo), parse_value(hi), *([parse_value(step_text)] if colon else [])]
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds):
        raise ValueError(f"{name}={text}: a range is LOW..HIGH or LOW..HIGH:STEP with numbers")
    low, high = float(bounds[0]), float(bounds[1])
    step = float(bounds[2]) if colon else None
    if not all(math.isfinite(float(b)) for b in bounds):
        raise ValueError(f"{name}={text}: LOW, HIGH and STEP must be finite numbers")
    if not low < high or (step is not None and step <= 0):
        raise ValueError(f"{name}={text}: LOW must be below HIGH and STEP positive")
    return Axis(name, low=low, high=high, step=step, integer=all(isinstance(b, int) for b in bounds))


def parse_space(specs: Sequence[str]) -> Space:
    """``["sma_cross.fast=5..50", "sma_cross.slow=50,100,200"]`` -> a :class:`Space`; ValueError naming
    the bad part. One strategy per study."""
    strategy, axes = "", {}
    for spec in specs:
        if not spec.isprintable():  # a line break would end up in the overlay's header, as TOML
            raise ValueError(f"grid {spec!r}: control characters (line breaks, tabs...) are not allowed")
        key, sep, values = spec.partition("=")
        name, dot, param = key.strip().partition(".")
        if not (sep and dot and name and param and values.strip()):
            raise ValueError(f"grid {spec!r}: write STRATEGY.PARAM=V1,V2,... or STRATEGY.PARAM=LOW..HIGH[:STEP]")
        if strategy and name != strategy:
            raise ValueError(f"a study tunes one strategy at a time; got {strategy!r} and {name!r}")
        if param in axes:
            raise ValueError(f"grid names {name}.{param} twice")
        strategy = name
        axes[param] = _axis(param, values.strip())
    if not axes:
        raise ValueError("no search space given: --grid STRATEGY.PARAM=V1,V2,... (or LOW..HIGH)")
    return Space(strategy, tuple(axes.values()))


def settings_for(settings: Settings, strategy: str, params: dict[str, Value]) -> Settings:
    """The settings running ``strategy`` alone with ``params``: a built-in, or an external module that
    is configured (pinned) in ``strategies.external``. StrategyConfigError for a refused combination."""
    if strategy in BUILTIN_NAMES:
        return with_params(settings, strategy, params)
    s = settings.strategies
    external = tuple(e for e in s.external if e.name == strategy)
    if not external:
        raise ValueError(f"unknown strategy {strategy!r}: a built-in ({', '.join(BUILTIN_NAMES)}) or one listed "
                         "in [[strategies.external]] (see docs/strategies.md)")
    merged = {**s.params.get(strategy, {}), **params}
    update = {"enabled": (), "external": external, "params": {strategy: merged}, "weights": {}}
    return settings.model_copy(update={"strategies": s.model_copy(update=update)})


def candles_digest(bars: Bars) -> str:
    """The candles themselves, for telling one study's data from another's of the same pair and span (another
    file, --lenient dropping rows)."""
    a = bars.arrays
    digest = hashlib.sha256()
    for column in (a.ts, a.open, a.high, a.low, a.close, a.volume):
        digest.update(np.ascontiguousarray(column, dtype=np.float64).tobytes())
    return f"{len(bars)} candles, sha256 {digest.hexdigest()[:16]}"


def fixed_settings(settings: Settings, space: Space, spec: RunSpec, min_trades: int) -> str:
    """Everything besides the searched parameters and the candles that decides a trial's result, as JSON of
    ``section.key`` -> value: sizing, fees and the paper venue, risk, the trading rules, the strategy's
    other parameters (and an external module's hash), ``min_trades``. Trials run with other values are not
    comparable, so a study is joined only with the same ones."""
    s = settings.strategies
    searched = {a.name for a in space.axes}
    values: dict[str, Any] = {"backtest.sizing": spec.sizing, "backtest.fill_on": spec.fill_on,
                              "backtest.resume_after_pause": spec.resume_after_pause, "min_trades": min_trades}
    if spec.sizing == "fixed":
        values["backtest.qty"] = str(spec.qty)
    elif spec.sizing == "fraction":
        values["backtest.fraction"] = str(spec.fraction)
    trading = settings.trading.model_dump(mode="json", exclude={
        "pairs", "history_bars", "mode", "venue", "feed", "manual_limit_band"})
    for section, dump in (("paper", settings.paper.model_dump(mode="json")),
                          ("risk", settings.risk.model_dump(mode="json")), ("trading", trading)):
        values.update({f"{section}.{k}": v for k, v in dump.items()})
    values.update({f"strategies.{k}": getattr(s, k) for k in ("entry_threshold", "exit_threshold", "higher_timeframe")})
    values.update({f"{space.strategy}.{k}": v for k, v in s.params.get(space.strategy, {}).items()
                   if k not in searched})
    values.update({f"{space.strategy}.sha256": e.sha256 for e in s.external if e.name == space.strategy})
    return json.dumps(values, sort_keys=True, default=str)


def cut(bars: Bars, lo: int, hi: int) -> Bars:
    """Bars ``lo`` to ``hi`` (exclusive) as a series of their own."""
    if bars.candles is not None:
        candles = bars.candles[lo:hi]
        return Bars(arrays=to_arrays(bars.pair, bars.timeframe_s, candles), candles=candles, source=bars.source)
    a = bars.arrays
    arrays = type(a)(pair=a.pair, timeframe_s=a.timeframe_s, ts=a.ts[lo:hi], open=a.open[lo:hi],
                     high=a.high[lo:hi], low=a.low[lo:hi], close=a.close[lo:hi], volume=a.volume[lo:hi])
    return Bars(arrays=arrays, source=bars.source)


@dataclass(frozen=True, slots=True)
class Windows:
    """``whole``: both windows as one series, for the out-of-sample run's warm-up."""

    in_sample: Bars
    out_of_sample: Bars | None
    whole: Bars | None = None

    def warmup(self, history_bars: int) -> int:
        """How many in-sample candles the out-of-sample run is given before its first candle."""
        return min(len(self.in_sample), history_bars) if self.out_of_sample is not None else 0

    def warm_out_of_sample(self, history_bars: int) -> tuple[Bars, int]:
        """The out-of-sample candles with the :meth:`warmup` candles before them, and that count."""
        assert self.out_of_sample is not None and self.whole is not None
        warm = self.warmup(history_bars)
        return cut(self.whole, len(self.in_sample) - warm, len(self.whole)), warm


def split(bars: Bars, oos_share: float) -> Windows:
    """The last ``oos_share`` of the candles held out; ValueError when a window would be too short."""
    held = round(len(bars) * oos_share)
    if held and (held < 50 or len(bars) - held < 50):
        raise ValueError(f"{len(bars)} candles are too few to hold out {oos_share:.0%} (each window needs 50); "
                         "use more data or --oos 0")
    if not held:
        return Windows(bars, None)
    return Windows(cut(bars, 0, len(bars) - held), cut(bars, len(bars) - held, len(bars)), bars)


@dataclass(frozen=True, slots=True)
class Plan:
    space: Space
    metric: str
    study: str
    storage: str
    trials: int
    seed: int = 0
    chunks: int = 3
    min_trades: int = 1
    jobs: int = 1


@dataclass(frozen=True, slots=True)
class Row:
    """A finished trial: its in-sample figures and, for the best ones, the out-of-sample backtest."""

    number: int
    params: dict[str, Value]
    score: float
    stats: dict[str, Any]
    out: BacktestStats | None = None
    out_score: float | None = None


@dataclass(slots=True)
class Outcome:
    sampler: str
    rows: list[Row] = field(default_factory=list)  # best first
    complete: int = 0  # complete trials, repeats of a set included
    pruned: int = 0
    repeats: int = 0  # complete trials of a set already complete in another trial
    failed: int = 0  # lost (their process stopped) or failed
    running: int = 0  # still running, or lost on another machine: not counted
    away: list[Away] = field(default_factory=list)  # the running ones whose process cannot be checked from here
    skipped: list[tuple[dict[str, Value], str]] = field(default_factory=list)
    ran: int = 0  # trials this run ran
    exhausted: bool = False  # the grid had fewer untried combinations than the run was asked for

    @property
    def best(self) -> Row | None:
        return self.rows[0] if self.rows and self.rows[0].score > -math.inf else None


def _stat_attrs(stats: BacktestStats) -> dict[str, Any]:
    def finite(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else float(x)
    return {"trades": stats.trades, "return_pct": finite(stats.return_pct), "win_rate_pct": finite(stats.win_rate_pct),
            "profit_factor": finite(stats.profit_factor), "max_drawdown_pct": finite(stats.max_drawdown_pct),
            "sharpe": finite(stats.sharpe)}


def _score(bars: Bars, settings: Settings, spec: RunSpec, runner: Runner, metric: str) -> tuple[float, BacktestStats]:
    """The metric and statistics of one run (of the candles after ``spec.warmup``, when it has one)."""
    result = runner(settings, bars, spec)
    stats = compute(result, float(bars.arrays.close[spec.warmup]), float(bars.arrays.close[-1]))
    return stats.metric(metric), stats


def make_objective(settings: Settings, bars: Bars, spec: RunSpec, plan: Plan,
                   runner: Runner) -> Callable[[Trial], float]:
    optuna = require_optuna()
    n = len(bars)
    ends = sorted({max(2, n * (k + 1) // plan.chunks) for k in range(plan.chunks)})

    def objective(trial: Trial) -> float:
        params = {a.name: a.suggest(trial) for a in plan.space.axes}
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        for done in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if done.params == trial.params and done.value is not None:
                for key in STAT_ATTRS:
                    trial.set_user_attr(key, done.user_attrs.get(key))
                trial.set_user_attr("repeat_of", done.number)
                return done.value
        try:
            with beating(trial.study, trial._trial_id):
                score, stats = run(trial, params)
        except StrategyConfigError as exc:
            trial.set_user_attr("skipped", str(exc))
            raise optuna.TrialPruned() from None
        for key, value in _stat_attrs(stats).items():
            trial.set_user_attr(key, value)
        return score if stats.trades >= plan.min_trades else -math.inf

    def run(trial: Trial, params: dict[str, Value]) -> tuple[float, BacktestStats]:
        """The metric and statistics over the whole in-sample window; TrialPruned when a part is hopeless."""
        run_settings = settings_for(settings, plan.space.strategy, params)
        for step, end in enumerate(ends):
            score, stats = _score(bars if end == n else cut(bars, 0, end), run_settings, spec, runner, plan.metric)
            if end == n:
                break
            trial.report(score, step)
            if trial.should_prune():
                trial.set_user_attr("pruned_at", f"{step + 1}/{len(ends)}")
                raise optuna.TrialPruned()
        return score, stats

    return objective


def progress_callback(plan: Plan, say: Say) -> Callable[[Study, FrozenTrial], None]:
    optuna = require_optuna()
    state = optuna.trial.TrialState

    def fmt(params: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in params.items())

    def done(study: Study, trial: FrozenTrial) -> None:
        attrs = trial.user_attrs
        if trial.state == state.PRUNED and "skipped" in attrs:
            line = f"trial {trial.number}: skipped {fmt(trial.params)}: {attrs['skipped']}"
        elif trial.state == state.PRUNED:
            last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
            part = f", {plan.metric} {last:.4g} so far" if last is not None else ""
            line = f"trial {trial.number}: pruned after {attrs.get('pruned_at', '?')} of the in-sample window{part}: " \
                   f"{fmt(trial.params)}"
        elif trial.state == state.COMPLETE and trial.value is not None:
            again = f"; same set as trial {attrs['repeat_of']}, not run again" if "repeat_of" in attrs else \
                f"; again for lost trial {attrs['again_for']}" if "again_for" in attrs else ""
            few = ", fewer than --min-trades" if int(attrs.get("trades") or 0) < plan.min_trades else ""
            line = (f"trial {trial.number}: {plan.metric} {trial.value:.4g} ({attrs.get('trades')} trades{few}"
                    f"{again}): {fmt(trial.params)}")
        else:
            line = f"trial {trial.number}: {trial.state.name.lower()}"
        try:
            best = study.best_trial
            line += f" | best {best.value:.4g} (trial {best.number})"
        except ValueError:
            pass
        say(line)

    return done


def exhaustive(plan: Plan) -> int | None:
    """The grid's size when the plan tries every combination of it (a grid of listed values no larger than
    the trials asked), else None (TPE)."""
    size = plan.space.grid_size
    return size if size is not None and plan.trials >= size else None


def _sampler(plan: Plan, grid_seed: int) -> tuple[Any, str]:
    """The grid's order comes from the seed the study was created with (``grid_seed``): Optuna gives trial
    n the n-th combination of that order, so every process of the study must share it, or two processes
    run one combination twice and skip another."""
    size = exhaustive(plan)
    if size is not None:
        sampler = stamped_grid(plan.space.grid(), grid_seed, plan.storage, plan.study)
        return sampler, f"every combination of the grid ({size})"
    return per_trial_tpe(plan.seed), f"TPE, seed {plan.seed}"


# what a study is joined with only when equal (the trials' results would not be comparable), as named
CHECKED = {"space": "parameters to search", "metric": "metric", "data": "data", "candles": "candles",
           "settings": "settings"}


def _differences(known: str, ours: str) -> str:
    """What differs between two ``settings`` attributes (JSON objects), named by key."""
    try:
        a, b = json.loads(known), json.loads(ours)
    except ValueError:
        return f"{known!r}, not {ours!r}"
    keys = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
    return "; ".join(f"{k} {a.get(k)!r}, not {b.get(k)!r}" for k in keys)


def open_study(plan: Plan, attrs: dict[str, str],
               opener: Callable[[str], tuple[BaseStorage, Callable[[], None]]] = open_storage,
               ) -> tuple[Study, Callable[[], None], str]:
    """Create or join the study; ValueError when an existing one tunes something else. ``opener`` opens the
    storage of ``plan.storage`` (a test wraps the real one to hold two processes at chosen points)."""
    optuna = require_optuna()
    storage, close = opener(plan.storage)
    try:
        with study_lock(plan.storage, plan.study):  # whoever writes its terms first is the study
            optuna.create_study(study_name=plan.study, storage=storage, direction="maximize", load_if_exists=True)
            study_id = storage.get_study_id_from_name(plan.study)
            known = storage.get_study_user_attrs(study_id)
            for key, value in {**attrs, "grid_seed": str(plan.seed)}.items():
                if key not in known:
                    storage.set_study_user_attr(study_id, key, value)
            known = storage.get_study_user_attrs(study_id)
        for key, label in CHECKED.items():
            if key in attrs and known.get(key) != attrs[key]:
                what = _differences(known[key], attrs[key]) if key == "settings" else \
                    f"{known[key]!r}, not {attrs[key]!r}"
                raise ValueError(f"study {plan.study!r} was made with other {label}: it has {what}; "
                                 "pick another --study name")
        sampler, label = _sampler(plan, int(known.get("grid_seed", plan.seed)))
        study = optuna.load_study(study_name=plan.study, storage=storage, sampler=sampler, pruner=median_pruner())
    except BaseException:
        close()
        raise
    return study, close, label


# -- running the study --------------------------------------------------------------------------------


def _trials_left(plan: Plan) -> int:
    """The trials this run adds: ``plan.trials``, or fewer when a grid has fewer left (shared among the
    workers so that none asks for a combination another has taken)."""
    size = exhaustive(plan)
    if size is None:
        return plan.trials
    optuna = require_optuna()
    storage, close = open_storage(plan.storage)
    try:
        return min(plan.trials, untried(optuna.load_study(study_name=plan.study, storage=storage), size))
    finally:
        close()


def _work(plan: Plan, attrs: dict[str, str], objective: Callable[[Trial], float], trials: int, say: Say) -> int:
    """Run up to ``trials`` trials in this process; how many ran. A grid gives no more than it has left: once
    every combination is taken, Optuna's grid sampler would run a taken one again (or one still running in
    another process), so the run stops instead."""
    study, close, _ = open_study(plan, attrs)
    size = exhaustive(plan)
    ran = 0

    def counted(_: Study, __: FrozenTrial) -> None:
        nonlocal ran
        ran += 1

    def stop_when_taken(study: Study, _: FrozenTrial) -> None:
        if size is not None and untried(study, size) <= 0:
            study.stop()

    try:
        callbacks = [progress_callback(plan, say), counted]
        if size is not None:
            trials = min(trials, untried(study, size))
            callbacks.append(stop_when_taken)
        if trials > 0:
            study.optimize(objective, n_trials=trials, callbacks=callbacks)
    finally:
        close()
    return ran


def _child(plan: Plan, attrs: dict[str, str], objective: Callable[[Trial], float], trials: int, index: int,
           ran: Any) -> None:
    def say(line: str) -> None:
        print(f"[job {index}] {line}", flush=True)
    # Ctrl-C reaches every process of the terminal's group: the parent stops the workers (run_study), so
    # that none prints its own KeyboardInterrupt from the middle of a backtest
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = _work(plan, attrs, objective, trials, say)
    except (ValueError, TradectlError) as exc:
        print(f"[job {index}] {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    with ran.get_lock():
        ran.value += done


def _ended(proc: Any) -> str:
    code = proc.exitcode
    return f"{proc.name} was killed by signal {-code}" if code is not None and code < 0 else f"{proc.name} failed"


def run_study(settings: Settings, windows: Windows, spec: RunSpec, plan: Plan, runner: Runner, attrs: dict[str, str],
              say: Say, top: int = 10) -> Outcome:
    """Run ``plan.trials`` more trials (in ``plan.jobs`` processes) and rank the whole study."""
    if plan.metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {plan.metric!r}")
    objective = make_objective(settings, windows.in_sample, spec, plan, runner)
    _, close, label = open_study(plan, attrs)
    close()  # each worker opens its own connection (none may cross a fork)
    fail_lost_trials(plan.storage, plan.study, {a.name for a in plan.space.axes}, say)
    trials = _trials_left(plan)
    if plan.jobs <= 1:
        ran = _work(plan, attrs, objective, trials, say)
    else:
        sys.stdout.flush()
        context = multiprocessing.get_context("fork")
        shares = [trials // plan.jobs + (1 if i < trials % plan.jobs else 0) for i in range(plan.jobs)]
        counter = context.Value("i", 0)
        procs = [context.Process(target=_child, args=(plan, attrs, objective, share, i, counter),
                                 name=f"tune-job-{i}") for i, share in enumerate(shares) if share]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:  # stop the workers; their trials are lost, and run again next time
            for p in procs:
                p.terminate()
            for p in procs:
                p.join()
            fail_lost_trials(plan.storage, plan.study, {a.name for a in plan.space.axes}, say)
            raise
        failed = [_ended(p) for p in procs if p.exitcode != 0]
        if failed:
            fail_lost_trials(plan.storage, plan.study, {a.name for a in plan.space.axes}, say)
            raise RuntimeError(f"{', '.join(failed)}; run the same command again to continue the study")
        ran = int(counter.value)
    outcome = rank_study(settings, windows, spec, plan, runner, label, top)
    outcome.ran = ran
    outcome.exhausted = exhaustive(plan) is not None and ran < plan.trials
    return outcome


def rank_study(settings: Settings, windows: Windows, spec: RunSpec, plan: Plan, runner: Runner, label: str,
               top: int = 10) -> Outcome:
    """Rank every trial of the study as it stands, the best ones backtested out of sample."""
    optuna = require_optuna()
    storage, close = open_storage(plan.storage)
    try:
        trials = optuna.load_study(study_name=plan.study, storage=storage).get_trials(deepcopy=False)
    finally:
        close()
    return _rank(settings, windows, spec, plan, runner, trials, label, top)


def best_value(plan: Plan) -> float | None:
    """The best in-sample value of the study's complete trials now (None without any): a process that
    ranked before another finished a better trial must not write its older best over the newer."""
    optuna = require_optuna()
    storage, close = open_storage(plan.storage)
    try:
        done = optuna.load_study(study_name=plan.study, storage=storage).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    finally:
        close()
    return max((t.value for t in done if t.value is not None), default=None)


def _rank(settings: Settings, windows: Windows, spec: RunSpec, plan: Plan, runner: Runner,
          trials: list[FrozenTrial], label: str, top: int) -> Outcome:
    optuna = require_optuna()
    state = optuna.trial.TrialState
    out = Outcome(sampler=label)
    seen: set[tuple[tuple[str, Any], ...]] = set()
    finished: list[FrozenTrial] = []
    for t in trials:
        key = tuple(sorted(t.params.items()))
        if t.state == state.PRUNED and "skipped" in t.user_attrs:
            out.skipped.append((dict(t.params), str(t.user_attrs["skipped"])))
        elif t.state == state.PRUNED:
            out.pruned += 1
        elif t.state == state.COMPLETE and t.value is not None:
            out.complete += 1
            if key not in seen:
                seen.add(key)
                finished.append(t)
        elif t.state == state.FAIL:
            out.failed += 1
        elif t.state == state.RUNNING:
            out.running += 1
            elsewhere = away(t)
            if elsewhere is not None:
                out.away.append(elsewhere)
    out.repeats = out.complete - len(finished)
    finished.sort(key=lambda t: (-(t.value if t.value is not None else -math.inf), t.number))
    if windows.out_of_sample is not None:
        warm_bars, warm = windows.warm_out_of_sample(settings.trading.history_bars)
        warm_spec = replace(spec, warmup=warm)
    for i, t in enumerate(finished):
        score = t.value if t.value is not None else -math.inf
        oos = oos_score = None
        if i < top and windows.out_of_sample is not None and score > -math.inf:
            run_settings = settings_for(settings, plan.space.strategy, dict(t.params))
            oos_score, oos = _score(warm_bars, run_settings, warm_spec, runner, plan.metric)
        out.rows.append(Row(t.number, dict(t.params), score, dict(t.user_attrs), oos, oos_score))
    return out
