"""The samplers of ``tradectl tune`` (:mod:`core.backtest.tuning`): TPE seeded per trial, and Optuna's grid
sampler, each writing which process runs a trial the moment it exists
(:func:`~core.backtest.studies.stamp_process`); how many trials a grid has left; the pruner.

Optuna is imported only when one is made (``tradectl tune`` alone needs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.backtest.studies import require_optuna, stamp_process, study_lock

if TYPE_CHECKING:
    from optuna import Study
    from optuna.trial import FrozenTrial


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number``: from the run's seed and the trial's place in the study."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def per_trial_tpe(seed: int) -> Any:
    """TPE whose randomness for trial n comes from ``trial_seed(seed, n)``.

    One seeded sampler per process would draw the same sets again in every process given the seed: a run
    resuming a study, or a second machine joining it with the default seed, repeats the sets already
    drawn instead of searching. Trial numbers are unique in a study, so each trial draws its own; a new
    study run by one process is still repeated exactly from its seed."""
    optuna = require_optuna()
    base: Any = optuna.samplers.BaseSampler  # imported here only: Optuna is loaded by tune alone

    class PerTrialTPE(base):  # type: ignore[misc]  # a subclass of Any: the class comes from the lazy import
        def __init__(self) -> None:
            self._samplers: dict[int, Any] = {}

        def _of(self, trial: FrozenTrial) -> Any:
            if trial.number not in self._samplers:
                self._samplers[trial.number] = optuna.samplers.TPESampler(seed=trial_seed(seed, trial.number))
            return self._samplers[trial.number]

        def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> Any:
            return self._of(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study: Study, trial: FrozenTrial, search_space: Any) -> Any:
            return self._of(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str, distribution: Any) -> Any:
            return self._of(trial).sample_independent(study, trial, param_name, distribution)

        def before_trial(self, study: Study, trial: FrozenTrial) -> None:
            stamp_process(study, trial)
            self._of(trial).before_trial(study, trial)

        def after_trial(self, study: Study, trial: FrozenTrial, state: Any, values: Any) -> None:
            sampler = self._samplers.pop(trial.number, None)
            if sampler is not None:
                sampler.after_trial(study, trial, state, values)

    return PerTrialTPE()


def stamped_grid(grid: dict[str, list[Any]], seed: int, storage: str, study_name: str) -> Any:
    """Optuna's grid sampler over ``grid`` in the order of ``seed``. It picks among the combinations no
    trial has taken, then writes its pick: two processes picking at once could take the same one and
    leave another for later, so the pick is made holding the study's lock."""
    optuna = require_optuna()
    base: Any = optuna.samplers.GridSampler

    class StampedGrid(base):  # type: ignore[misc]  # a subclass of Any: the class comes from the lazy import
        def before_trial(self, study: Study, trial: FrozenTrial) -> None:
            stamp_process(study, trial)
            with study_lock(storage, study_name):
                super().before_trial(study, trial)

    return StampedGrid(grid, seed=seed)


def untried(study: Study, size: int) -> int:
    """How many trials a grid study can still give: combinations no trial has taken (finished or running),
    and sets queued to run again (a lost trial's)."""
    optuna = require_optuna()
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    taken = {t.system_attrs["grid_id"] for t in trials
             if "grid_id" in t.system_attrs and (t.state.is_finished() or t.state == state.RUNNING)}
    return size - len(taken) + sum(1 for t in trials if t.state == state.WAITING)


def median_pruner() -> Any:
    optuna = require_optuna()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
