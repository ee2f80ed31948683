"""Two runs creating one new study with other settings at the same instant: exactly one makes the study,
the other is refused, on SQLite and on PostgreSQL.

The instants are forced rather than hoped for: each run is a real process whose study storage (Optuna's
own, as the project opens it) holds it at the points where the race was lost: after its first read of
the study's terms until the other has read them too, and the second before its first write until the
first has read its own terms back. Both then saw a bare study, wrote their own terms and read them back,
and both ran trials under other settings in one study."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HOLD_S = 3.0  # how long a held run waits for the other (which, with the study locked, cannot come)
SPACE = "sma_cross: fast=5,10"


class _Held:
    """An Optuna storage that holds its process at the race's points; everything else is the storage's."""

    def __init__(self, inner: Any, first: bool, both_read: Any, first_read_back: Any) -> None:
        self._inner, self._first = inner, first
        self._both_read, self._first_read_back = both_read, first_read_back
        self._reads = self._writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        attrs = self._inner.get_study_user_attrs(study_id)
        self._reads += 1
        if self._reads == 1:
            try:
                self._both_read.wait(HOLD_S)
            except threading.BrokenBarrierError:
                pass  # the other run could not read meanwhile
        elif self._reads == 2 and self._first:
            self._first_read_back.set()
        return dict(attrs)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._writes += 1
        if self._writes == 1 and not self._first:
            self._first_read_back.wait(HOLD_S)
        self._inner.set_study_user_attr(study_id, key, value)


def _terms(fee: str) -> dict[str, str]:
    return {"space": SPACE, "metric": "return", "data": "BTC/USD 1h", "candles": "100 candles, sha256 0",
            "settings": json.dumps({"paper.taker_fee": fee})}


def _join(url: str, fee: str, first: bool, ready: Any, both_read: Any, first_read_back: Any, results: Any) -> None:
    from core.backtest.studies import open_storage, require_optuna
    from core.backtest.tuning import Plan, open_study, parse_space

    require_optuna()
    ready.wait(60)  # both imported: they start together

    def opener(storage_url: str) -> tuple[Any, Callable[[], None]]:
        storage, close = open_storage(storage_url)
        return _Held(storage, first, both_read, first_read_back), close

    plan = Plan(space=parse_space(["sma_cross.fast=5,10"]), metric="return", study="s", storage=url, trials=2)
    try:
        _, close, _ = open_study(plan, _terms(fee), opener)
    except ValueError as exc:
        results.put((fee, f"refused: {exc}"))
        return
    close()
    results.put((fee, "made"))


def _race(url: str) -> None:
    from core.backtest.studies import open_storage, require_optuna

    optuna = require_optuna()
    open_storage(url)[1]()  # the storage's tables exist: the race is over the study alone
    # spawned, not forked: a child forked after this process had connected to PostgreSQL once hung in
    # asyncpg's connect, creating its SSL context; a spawned one starts clean
    context = multiprocessing.get_context("spawn")
    ready, both_read = context.Barrier(2), context.Barrier(2)
    first_read_back, results = context.Event(), context.Queue()
    procs = [context.Process(target=_join, args=(url, fee, fee == "0.001", ready, both_read, first_read_back,
                                                 results)) for fee in ("0.001", "0.002")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    outcome = dict(results.get(timeout=5) for _ in procs)
    made = [fee for fee, result in outcome.items() if result == "made"]
    assert len(made) == 1, outcome
    loser = "0.002" if made == ["0.001"] else "0.001"
    assert outcome[loser] == (f"refused: study 's' was made with other settings: it has paper.taker_fee "
                              f"{made[0]!r}, not {loser!r}; pick another --study name")
    storage, close = open_storage(url)
    try:
        study = optuna.load_study(study_name="s", storage=storage)
        assert study.user_attrs["settings"] == _terms(made[0])["settings"]
    finally:
        close()


def test_two_runs_making_one_new_sqlite_study_with_other_settings_one_is_refused(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path / 'studies.db'}")


@pytest.mark.postgres
def test_two_runs_making_one_new_postgresql_study_with_other_settings_one_is_refused(pg_database_url: str) -> None:
    _race(pg_database_url)
