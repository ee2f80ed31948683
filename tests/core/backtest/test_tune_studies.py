"""``tradectl tune`` studies as real processes use them: several workers filling one grid, a run resuming
a study, a worker killed in the middle of a trial, a study joined with other settings, a storage that
cannot be reached, and hostile names and grids."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DATA = ["--from", "2019-01-01", "--to", "2019-03-01", "--sizing", "fixed", "--qty", "1", "--fee", "0.001",
        "--slippage-bps", "0", "--impact-bps", "0", "--cash", "1000000", "--metric", "return", "--min-trades", "1"]
GRID = ["--grid", "sma_cross.fast=3,5,8,10", "--grid", "sma_cross.slow=20,30,40"]
WIDE = ["--grid", "sma_cross.fast=3..60", "--grid", "sma_cross.slow=70..250"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    return {**env, "PYTHONPATH": str(ROOT)}


def _tune(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.app.cli", "tune", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _trials(storage: str, study: str) -> list:  # type: ignore[type-arg]  # optuna's FrozenTrial, imported late
    import optuna

    from core.backtest.studies import open_storage

    handle, close = open_storage(storage)
    try:
        return optuna.load_study(study_name=study, storage=handle).get_trials()
    finally:
        close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_several_jobs_fill_a_grid_with_every_combination_once(tmp_path: Path) -> None:
    """Optuna gives trial n the n-th combination of the grid's seeded order: workers with orders of their own
    ran one combination twice and never another."""
    run = _tune(tmp_path, *DATA, *GRID, "--study", "g", "--jobs", "2", "--seed", "1", "--dry-run", "--chunks", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    trials = _trials(f"sqlite:///{tmp_path / 'data' / 'tradectl-optuna.db'}", "g")
    combos = [(t.params["fast"], t.params["slow"]) for t in trials]
    assert len(trials) == 12 and len(set(combos)) == 12
    assert "12 sets tried, 0 skipped, 0 pruned (sampler: every combination of the grid (12))" in run.stdout


def test_a_grid_smaller_than_the_trials_asked_says_it_is_exhausted_and_adds_no_repeats(tmp_path: Path) -> None:
    """A grid with fewer untried sets than --trials ran fewer trials without a word, and a run on a grid
    already tried added one more trial of a set already done (one per --jobs worker)."""
    args = [*DATA, *GRID, "--study", "x", "--seed", "1", "--dry-run", "--chunks", "1"]
    first = _tune(tmp_path, *args, "--trials", "20", "--jobs", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "20 trials (the grid has 12 combinations: no more are run) in 2 processes" in first.stdout
    assert ("the grid is exhausted: this run ran 12 of the 20 trials asked; every one of its 12 combinations has "
            "been tried or is running") in first.stdout
    for jobs in ("1", "3"):
        again = _tune(tmp_path, *args, "--trials", "12", "--jobs", jobs)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "the grid is exhausted: this run ran 0 of the 12 trials asked" in again.stdout
        assert "12 sets tried, 0 skipped, 0 pruned (sampler" in again.stdout  # no repeats added
    trials = _trials(f"sqlite:///{tmp_path / 'data' / 'tradectl-optuna.db'}", "x")
    assert len(trials) == 12 and len({(t.params["fast"], t.params["slow"]) for t in trials}) == 12


def test_a_run_resuming_a_study_with_the_same_seed_draws_new_sets(tmp_path: Path) -> None:
    """A second run with the same seed (the default backtest.seed, or a machine joining with it) drew the
    sets the first run had drawn, so its trials were all repeats and searched nothing."""
    args = [*DATA, *WIDE, "--study", "again", "--seed", "1", "--trials", "6", "--dry-run", "--chunks", "1"]
    first = _tune(tmp_path, *args)
    second = _tune(tmp_path, *args)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    lines = [line for line in second.stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == 6 and not any("same set as trial" in line for line in lines), second.stdout
    trials = _trials(f"sqlite:///{tmp_path / 'data' / 'tradectl-optuna.db'}", "again")
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 12
    assert "12 sets tried" in second.stdout


def _kill_mid_trial(cwd: Path, storage: str, args: list[str]) -> int:
    """Start a tune run, SIGKILL it while a trial runs (the trial has started its backtest); its pid."""
    proc = subprocess.Popen([sys.executable, "-m", "core.app.cli", "tune", *args], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                trials = _trials(storage, "k")
            except Exception:  # noqa: BLE001 - the study may not exist yet
                trials = []
            if any(t.state.name == "RUNNING" and "worker" in t.user_attrs for t in trials):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before a trial could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return proc.pid


def _killed_and_resumed(tmp_path: Path, storage: str) -> None:
    overlay = tmp_path / "tuned.toml"
    # engine mode (risk sizing): a trial takes long enough to be killed in the middle of it
    args = ["--from", "2019-01-01", "--to", "2019-02-01", "--sizing", "risk", "--metric", "return", "--min-trades",
            "1", *WIDE, "--study", "k", "--seed", "1", "--storage", storage, "--output", str(overlay)]
    pid = _kill_mid_trial(tmp_path, storage, [*args, "--trials", "5"])
    killed = [t for t in _trials(storage, "k") if t.user_attrs.get("worker", "").endswith(f":{pid}")
              and t.state.name not in ("COMPLETE", "PRUNED")]
    assert len(killed) == 1 and not overlay.exists()
    lost = killed[0]
    resumed = _tune(tmp_path, *args, "--trials", "2")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trials = {t.number: t for t in _trials(storage, "k")}
    assert trials[lost.number].state.name == "FAIL" and "stopped before it finished" in trials[lost.number].user_attrs[
        "lost"]
    assert f"trial {lost.number}: lost, its process ({pid}) stopped before it finished" in resumed.stdout
    again = [t for t in trials.values() if t.user_attrs.get("again_for") == lost.number]
    assert len(again) == 1 and again[0].params == lost.params and again[0].state.name in ("COMPLETE", "PRUNED")
    assert len(trials) == len(set(trials)) and sorted(trials) == list(range(len(trials)))  # numbers unique
    assert "1 trial failed or lost (not counted)" in resumed.stdout
    complete = [t for t in trials.values() if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: (t.value, -t.number))
    assert tomllib.loads(overlay.read_text())["strategies"]["params"]["sma_cross"] == best.params


@pytest.mark.slow
def test_a_trial_killed_on_sqlite_is_marked_lost_and_its_set_runs_again(tmp_path: Path) -> None:
    """A SIGKILLed worker's trial stayed RUNNING forever, counted nowhere; the resumed run now fails it
    honestly (lost, not counted, never a best) and runs its set again."""
    _killed_and_resumed(tmp_path, f"sqlite:///{tmp_path / 'studies.db'}")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_trial_killed_on_postgresql_is_marked_lost_and_its_set_runs_again(tmp_path: Path,
                                                                              pg_database_url: str) -> None:
    _killed_and_resumed(tmp_path, pg_database_url)


def test_a_study_joined_with_other_fees_is_refused(tmp_path: Path) -> None:
    """The study checked the parameters, metric and data span, not the fees, sizing or the strategy's
    other parameters: trials scored under other costs were ranked together."""
    base = [*GRID, "--study", "fees", "--trials", "2", "--dry-run", "--quiet"]
    assert _tune(tmp_path, *DATA, *base).returncode == 0
    other = [a if a != "0.001" else "0.002" for a in DATA]
    again = _tune(tmp_path, *other, *base)
    assert again.returncode == 2
    assert ("study 'fees' was made with other settings: it has paper.maker_fee '0.001', not '0.002'; "
            "paper.taker_fee '0.001', not '0.002'; pick another --study name") in again.stderr
    assert len(_trials(f"sqlite:///{tmp_path / 'data' / 'tradectl-optuna.db'}", "fees")) == 2


@pytest.mark.parametrize("storage", ["postgresql://postgres@127.0.0.1:{port}/test", "sqlite:///{tmp}/no/such/dir/x.db"])
def test_a_storage_that_cannot_be_opened_is_one_line_and_nothing_is_written(tmp_path: Path, storage: str) -> None:
    url = storage.format(port=_free_port(), tmp=tmp_path)
    run = _tune(tmp_path, *DATA, *GRID, "--storage", url, "--output", str(tmp_path / "tuned.toml"))
    assert run.returncode == 1
    assert run.stderr.startswith(f"study storage {url} cannot be opened: ")
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no overlay, no data directory, no study file


def test_hostile_grids_are_refused_and_never_reach_the_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / "tuned.toml"
    injected = _tune(tmp_path, *DATA, "--grid", "sma_cross.fast=5,10\n[strategies.params.trend]\nfast=99",
                     "--output", str(overlay), "--quiet")
    assert injected.returncode == 2 and "control characters" in injected.stderr and not overlay.exists()
    for bad in ("sma_cross.fast=1..inf", "sma_cross.fast=-inf..5", "sma_cross.fast=1..10:inf", "sma_cross.fast=5,nan"):
        run = _tune(tmp_path, *DATA, "--grid", bad, "--output", str(overlay), "--quiet")
        assert run.returncode == 2 and "finite" in run.stderr and "Traceback" not in run.stderr, (bad, run.stderr)
    assert not overlay.exists()


def test_study_names_blank_unprintable_or_too_long_are_refused_and_hostile_ones_work(tmp_path: Path) -> None:
    for bad in ("", "  ", "two\nlines", "x" * 513):
        run = _tune(tmp_path, *DATA, *GRID, "--study", bad, "--dry-run", "--quiet")
        assert run.returncode == 2 and "--study" in run.stderr, (bad, run.stderr)
    assert not (tmp_path / "data").exists()
    name = "a'b\"c; DROP TABLE studies; -- ünï 💥 " + "y" * 400
    for _ in range(2):  # created, then joined (one trial each: TPE, a grid once tried adds none)
        run = _tune(tmp_path, *DATA, "--grid", "sma_cross.fast=5,10", "--trials", "1", "--study", name, "--dry-run",
                    "--quiet")
        assert run.returncode == 0, run.stderr
    trials = _trials(f"sqlite:///{tmp_path / 'data' / 'tradectl-optuna.db'}", name)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both runs added to the one study


def _open_storage_at(start: float, url: str) -> None:
    """A tune run's first step, begun at an agreed instant (a forked child: nothing shared but the time)."""
    from core.backtest.studies import open_storage

    time.sleep(max(0.0, start - time.time()))
    open_storage(url)[1]()


def test_runs_that_start_together_on_a_new_sqlite_storage_all_open_it(tmp_path: Path) -> None:
    """Two runs started at once on a new study file (two terminals, a script) raced Optuna's creation of its
    tables: one failed with 'UNIQUE constraint failed: alembic_version.version_num'."""
    import multiprocessing

    from core.backtest.studies import require_optuna

    require_optuna()  # imported once, before the children fork
    context = multiprocessing.get_context("fork")
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'studies-{round_}.db'}"
        start = time.time() + 0.5
        procs = [context.Process(target=_open_storage_at, args=(start, url)) for _ in range(6)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        assert [proc.exitcode for proc in procs] == [0] * 6


def _ask_and_die(url: str) -> None:
    """A worker killed the instant its trial exists, before the trial's set is drawn."""
    from core.backtest.tuning import Plan, open_study, parse_space

    plan = Plan(space=parse_space([WIDE[1], WIDE[3]]), metric="return", study="early", storage=url, trials=5)
    study, _, _ = open_study(plan, {})
    study.ask()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_before_its_trial_drew_a_set_is_lost_too(tmp_path: Path) -> None:
    """Which process runs a trial was written once its set was drawn: a worker killed before (while the
    sampler worked) left a trial shown as 'still running' for ever."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    args = [*DATA, *WIDE, "--study", "early", "--storage", url, "--dry-run", "--chunks", "1"]
    assert _tune(tmp_path, *args, "--trials", "1").returncode == 0
    child = multiprocessing.get_context("fork").Process(target=_ask_and_die, args=(url,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    run = _tune(tmp_path, *args, "--trials", "1")
    assert run.returncode == 0, run.stderr
    assert f"trial 1: lost, its process ({child.pid}) stopped before it finished; not counted\n" in run.stdout
    trials = _trials(url, "early")
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"] and trials[1].params == {}
    assert "still running" not in run.stdout and "1 trial failed or lost (not counted)" in run.stdout


def test_a_trial_running_on_another_machine_says_when_it_was_last_heard_from(tmp_path: Path) -> None:
    """A trial of another machine cannot be checked from here: it was shown as 'still running' alike whether
    its process wrote a second ago or died hours ago. Each running trial now writes the time every 30 s; a
    run elsewhere says how long it has not been heard from, and still leaves the trial as it is."""
    from datetime import UTC, datetime, timedelta

    from core.backtest.tuning import Plan, open_study, parse_space

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    args = [*DATA, *WIDE, "--study", "far", "--storage", url, "--dry-run", "--chunks", "1", "--trials", "1"]
    assert _tune(tmp_path, *args).returncode == 0
    plan = Plan(space=parse_space([WIDE[1], WIDE[3]]), metric="return", study="far", storage=url, trials=1)
    study, close, _ = open_study(plan, {})
    try:  # two trials as a worker on another machine leaves them: running, its process not this machine's
        for silent in (timedelta(hours=2, seconds=30), timedelta(0)):
            trial = study.ask()
            trial.set_user_attr("process", "far-host/8c0f1ad2-boot/pid:[4026531836]:4242")
            trial.set_user_attr("alive_at", (datetime.now(UTC) - silent).isoformat(timespec="seconds"))
    finally:
        close()
    run = _tune(tmp_path, *args)
    assert run.returncode == 0, run.stderr
    assert "2 trials still running (not counted)" in run.stdout
    assert ("  trial 1 runs on far-host, not heard from for 2 h 0 min (a running trial is heard from every 30 s): "
            "its process has most likely stopped, which cannot be checked from here, so it is left as it is; "
            "not counted\n") in run.stdout
    assert re.search(r"^  trial 2 runs on far-host, last heard from \d+ s ago; not counted until it finishes$",
                     run.stdout, re.MULTILINE), run.stdout
    trials = _trials(url, "far")
    assert [t.state.name for t in trials] == ["COMPLETE", "RUNNING", "RUNNING", "COMPLETE"]
    assert all("alive_at" in trials[n].user_attrs for n in (0, 3))  # this version's trials are heard from


def test_a_trial_is_heard_from_while_it_runs_and_no_longer_once_it_ends(tmp_path: Path) -> None:
    import optuna

    from core.backtest.studies import beating, open_storage

    storage, close = open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    try:
        study = optuna.create_study(study_name="beat", storage=storage)
        trial = study.ask()

        def heard() -> str | None:
            return storage.get_trial(trial._trial_id).user_attrs.get("alive_at")

        def wait_for(pred: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 10
            while not pred():
                assert time.monotonic() < deadline, "not heard from"
                time.sleep(0.02)

        with beating(study, trial._trial_id, every=0.05):
            wait_for(lambda: heard() is not None)
            first = heard()
            wait_for(lambda: heard() != first)  # written again (the time has a resolution of a second)
        last = heard()
        time.sleep(1.1)
        assert heard() == last
    finally:
        close()


def test_ctrl_c_stops_a_run_of_several_jobs_without_tracebacks(tmp_path: Path) -> None:
    """Ctrl-C reaches every process of the terminal's group: each worker printed its KeyboardInterrupt
    traceback."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["--from", "2019-01-01", "--to", "2019-02-01", "--sizing", "risk", "--metric", "return", "--min-trades",
            "1", *WIDE, "--study", "k", "--storage", url, "--trials", "20", "--jobs", "2", "--dry-run"]
    proc = subprocess.Popen([sys.executable, "-m", "core.app.cli", "tune", *args], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                running = [t for t in _trials(url, "k") if t.state.name == "RUNNING" and "worker" in t.user_attrs]
            except Exception:  # noqa: BLE001 - the study may not exist yet
                running = []
            if len(running) == 2:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode in (1, 130) and "Traceback" not in err and "ERROR" not in err, err
    assert not any(t.state.name == "RUNNING" for t in _trials(url, "k"))


@pytest.mark.slow
def test_a_run_that_ranked_before_another_finished_a_better_set_does_not_write_its_older_best(tmp_path: Path) -> None:
    """Two runs of one study: the first ranks its one trial, is held there (SIGSTOP, as a slow machine
    would be), the second tries the whole grid and writes the best; when the first went on, it wrote its
    older, worse set over it."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    overlay = tmp_path / "tuned.toml"
    # engine mode, most candles held out: the out-of-sample backtest of the ranking takes a while
    args = ["--from", "2019-01-01", "--to", "2019-03-01", "--oos", "0.8", "--sizing", "risk", "--metric", "return",
            "--min-trades", "1", "--grid", "sma_cross.fast=5,10", "--grid", "sma_cross.slow=20,40", "--study", "race",
            "--storage", url, "--output", str(overlay), "--quiet", "--seed", "4"]
    first = subprocess.Popen([sys.executable, "-m", "core.app.cli", "tune", *args, "--trials", "1"], cwd=tmp_path,
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            try:
                if any(t.state.name == "COMPLETE" for t in _trials(url, "race")):
                    break
            except Exception:  # noqa: BLE001 - the study may not exist yet
                pass
            time.sleep(0.02)
        time.sleep(0.2)  # it has read the study and backtests its best out of sample
        os.kill(first.pid, signal.SIGSTOP)
        second = _tune(tmp_path, *args, "--trials", "4")
        assert second.returncode == 0, second.stderr
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, out + err
    complete = [t for t in _trials(url, "race") if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: (t.value, -t.number))
    assert tomllib.loads(overlay.read_text())["strategies"]["params"]["sma_cross"] == best.params
    assert "a better set finished in another process while this run ranked; ranking the study again" in out, out
