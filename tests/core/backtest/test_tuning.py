"""``tradectl tune`` on Optuna: seeded and reproducible, pruning, out-of-sample beside in-sample, studies
stored in the project's database and joined by several processes (PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.app.backtest_cli import register
from core.app.tune_cli import register as register_tune
from core.backtest.studies import describe, open_storage, storage_url, sync_driver
from core.backtest.tuning import parse_space

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
app = typer.Typer()
register(app)
register_tune(app)

DATA = ["--from", "2019-01-01", "--to", "2019-03-01", "--sizing", "fixed", "--qty", "1", "--fee", "0.001",
        "--slippage-bps", "0", "--impact-bps", "0", "--cash", "1000000", "--metric", "return", "--min-trades", "1"]
RANGES = ["--grid", "sma_cross.fast=3..15", "--grid", "sma_cross.slow=20..60:5"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TRADECTL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def _trial_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("trial ")]


@pytest.mark.slow
def test_a_seeded_study_is_reproducible_and_prunes_hopeless_trials(tmp_path: Path) -> None:
    args = ["tune", *DATA, *RANGES, "--trials", "12", "--seed", "6", "--dry-run"]
    first = runner.invoke(app, [*args, "--study", "one"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*args, "--study", "two"])
    assert second.exit_code == 0, second.output
    lines = _trial_lines(first.output)
    assert len(lines) == 12 and lines == _trial_lines(second.output)  # same seed, same trials, same values
    assert any("pruned after 1/3 of the in-sample window" in line for line in lines)
    assert all("| best " in line for line in lines)  # progress with the best so far
    assert "12 sets tried, 0 skipped, 4 pruned (sampler: TPE, seed 6)" in first.output
    assert (tmp_path / "data" / "tradectl-optuna.db").exists()  # stored beside the embedded database
    other = runner.invoke(app, [*args, "--study", "three", "--seed", "7"])
    assert _trial_lines(other.output) != lines


def test_out_of_sample_is_shown_beside_in_sample_and_the_best_set_goes_to_the_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / "tuned.toml"
    run = runner.invoke(app, ["tune", *DATA, "--grid", "sma_cross.fast=5,10", "--grid", "sma_cross.slow=12,30",
                              "--oos", "0.3", "--output", str(overlay), "--quiet"])
    assert run.exit_code == 0, run.output
    out = run.output.splitlines()
    assert "in-sample: 2019-01-01 00:00 -> 2019-02-11 07:00 UTC, 991 candles; out-of-sample: 2019-02-11 07:00 -> " \
           "2019-03-01 00:00 UTC, 425 candles, after 500 in-sample candles of warm-up" in out
    header = next(line for line in out if line.lstrip().startswith("#"))
    assert "IS score" in header and "OOS score" in header
    best = next(line for line in out if line.startswith("  1  "))
    assert len(best.split()) == 10 and best.split()[-3:] != ["-", "-", "-"]  # rank, 2 params, 4 IS, 3 OOS
    params = tomllib.loads(overlay.read_text())["strategies"]["params"]["sma_cross"]
    assert best.split()[1:3] == [f"fast={params['fast']},", f"slow={params['slow']}"]
    assert "out-of-sample" in overlay.read_text()
    assert not any(line.startswith("trial ") for line in out)  # --quiet


def test_joining_a_study_with_another_search_space_is_refused() -> None:
    base = ["tune", *DATA, "--study", "shared", "--trials", "2", "--dry-run", "--quiet"]
    assert runner.invoke(app, [*base, *RANGES]).exit_code == 0
    again = runner.invoke(app, [*base, "--grid", "sma_cross.fast=3..9", "--grid", "sma_cross.slow=20..60:5"])
    assert again.exit_code == 2
    assert ("study 'shared' was made with other parameters to search: it has 'sma_cross: fast=3..15 slow=20..60:5', "
            "not 'sma_cross: fast=3..9 slow=20..60:5'; pick another --study name") in again.output


def test_search_space_and_storage_urls() -> None:
    space = parse_space(["sma_cross.fast=3..15", "sma_cross.slow=20,40", "sma_cross.x=0.5..2.0:0.5"])
    assert [a.text() for a in space.axes] == ["fast=3..15", "slow=20,40", "x=0.5..2.0:0.5"]
    assert space.grid_size is None and parse_space(["a.b=1,2,3", "a.c=x,y"]).grid_size == 6
    for bad in (["a.b=5..1"], ["a.b=1..x"], ["a.b=1", "c.d=2"], ["nodot=1"]):
        with pytest.raises(ValueError):
            parse_space(bad)
    assert storage_url("sqlite:///var/db/tradectl.db").endswith("var/db/tradectl-optuna.db")
    assert storage_url("postgresql+asyncpg://u:pw@h/db") == "postgresql+asyncpg://u:pw@h/db"
    assert describe("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    with pytest.raises(ValueError, match="sqlite:///FILE or postgresql"):
        storage_url("mysql://h/db")


def test_without_optuna_tune_says_how_to_install_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['optuna'] = None; from core.app.cli import app; "
            "app(['tune', '--grid', 'sma_cross.fast=5,10'])")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**_env(), "PYTHONPATH": str(ROOT)})
    assert run.returncode == 1
    assert "pip install 'tradectl[research]'" in run.stderr and "Traceback" not in run.stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}


@pytest.mark.postgres
@pytest.mark.slow
def test_a_study_on_postgresql_is_joined_by_two_processes(tmp_path: Path, pg_database_url: str) -> None:
    url = pg_database_url.replace("postgresql://", "postgresql+asyncpg://")  # as the service writes it
    (tmp_path / "tradectl.toml").write_text(f'[database]\nurl = "{url}"\n')
    args = [sys.executable, "-m", "core.app.cli", "tune", *DATA, *RANGES, "--study", "shared", "--dry-run"]
    env = {**_env(), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([*args, *extra], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for extra in (["--trials", "4", "--jobs", "2", "--seed", "1"],
                                                       ["--trials", "3", "--seed", "2"])]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out + err
    assert sum("[job 0]" in line or "[job 1]" in line for line in outputs[0][0].splitlines()) == 4
    storage, close = open_storage(storage_url(url))
    try:
        import optuna

        trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    finally:
        close()
    assert len(trials) == 7
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 3  # two forked jobs of the first process and the second process
    assert "7 sets tried" in outputs[0][0] or "7 sets tried" in outputs[1][0]  # whoever finished last saw all
    if sync_driver() is None:  # the project installs no synchronous driver: the journal table holds the study
        async def count() -> int:
            import asyncpg  # type: ignore[import-untyped]

            conn = await asyncpg.connect(pg_database_url)
            try:
                return int(await conn.fetchval("SELECT count(*) FROM tradectl_optuna_journal"))
            finally:
                await conn.close()
        assert asyncio.run(count()) > 7


def _open_journal_at(start: float, dsn: str) -> None:
    """A tune worker's first step, begun at an agreed instant (a forked child: nothing shared but the time)."""
    import time

    from core.backtest.studies import PostgresJournal

    time.sleep(max(0.0, start - time.time()))
    PostgresJournal(dsn).close()


def test_workers_that_start_together_on_a_new_database_all_open_the_journal(pg_database_url: str) -> None:
    """The journal table is created by whichever worker comes first; the others, starting in the same
    instant, neither fail on PostgreSQL's catalogue nor create it twice."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("fork")
    for _ in range(5):
        start = time.time() + 0.5
        procs = [context.Process(target=_open_journal_at, args=(start, pg_database_url)) for _ in range(6)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        assert [proc.exitcode for proc in procs] == [0] * 6

        async def drop() -> None:
            import asyncpg  # type: ignore[import-untyped]

            conn = await asyncpg.connect(pg_database_url)
            try:
                await conn.execute("DROP TABLE tradectl_optuna_journal")
            finally:
                await conn.close()
        asyncio.run(drop())


def test_optuna_is_imported_by_tune_alone(tmp_path: Path) -> None:
    code = ("import sys; import core.app.cli, core.app.tune_cli, core.backtest.tuning, core.backtest.studies; "
            "print('optuna' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**_env(), "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_an_unknown_strategy_is_a_usage_error() -> None:
    run = runner.invoke(app, ["tune", *DATA, "--grid", "nosuch.fast=1,2", "--dry-run"])
    assert run.exit_code == 2 and "unknown strategy 'nosuch'" in run.output


@pytest.mark.postgres
def test_the_postgresql_study_storage_runs_no_thread_that_forked_workers_could_inherit(pg_database_url: str) -> None:
    """The journal and the study lock ran their connection on a thread of their own; `tune --jobs` forks its
    workers after the parent used them, and a worker forked so could hang in its own connect (in a probe,
    3 of 80 children hung creating their SSL context). No thread is started now, open or closed."""
    from core.backtest.studies import study_lock

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    _, close = open_storage(pg_database_url)
    try:
        assert threads() == before
        with study_lock(pg_database_url, "s"):
            assert threads() == before
    finally:
        close()
    assert threads() == before
