"""Where ``tradectl tune`` keeps its Optuna studies (beside or inside the project's database), and which
process runs each trial, so that a trial whose process died is told from a running one.

- **Embedded** (``database.url = sqlite:///data/tradectl.db``): an Optuna RDB storage in its own SQLite
  file beside the database (``data/tradectl-optuna.db``), so the service's schema and migrations never
  meet Optuna's tables. Several processes on one machine can join a study in it.
- **PostgreSQL** (``postgresql://`` or ``postgresql+asyncpg://``): shared by every machine that reaches
  the database. Optuna's RDB storage needs a synchronous driver; when psycopg2, psycopg (3) or pg8000
  is installed it is used. The project itself installs only asyncpg, so otherwise the study goes into
  an Optuna *journal* kept in one table (``tradectl_optuna_journal``, created on first use) through
  :class:`PostgresJournal`: every process appends Optuna's log records under a table lock, so records
  are numbered without holes in commit order, which is what Optuna's journal storage requires to let
  several processes work on one study.

Optuna is imported here only when a storage is opened (``tradectl tune`` alone needs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from exchanges.errors import TradectlError
from persistence.files import locked

if TYPE_CHECKING:
    from optuna import Study
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

T = TypeVar("T")
JOURNAL_TABLE = "tradectl_optuna_journal"
ALIVE = "alive_at"  # a running trial's last sign of life, written every BEAT_S seconds
BEAT_S = 30.0
CONNECT_TIMEOUT_S = 10
SQLITE_CREATE_TRIES = 5
SYNC_DRIVERS = (("psycopg2", "psycopg2"), ("psycopg", "psycopg"), ("pg8000", "pg8000"))  # (module, dialect)


class OptunaMissing(TradectlError, RuntimeError):
    """Optuna is not installed: ``tradectl tune`` needs the ``research`` extra."""


class StudyStorageError(TradectlError, RuntimeError):
    """The study storage cannot be opened: the server is unreachable or refuses, the file cannot be made."""


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise OptunaMissing("tradectl tune needs Optuna: pip install 'tradectl[research]'") from exc
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own progress lines say what happens
    return optuna


def sqlite_beside(url: str) -> str:
    """``sqlite:///data/tradectl.db`` -> ``sqlite:///data/tradectl-optuna.db`` (its directory created)."""
    path = Path(url.split("///", 1)[1]) if "///" in url else Path("data/tradectl.db")
    target = path.with_name(f"{path.stem}-optuna.db")
    target.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{target}"


def sync_driver() -> str | None:
    """The SQLAlchemy dialect of an installed synchronous PostgreSQL driver, or None."""
    for module, dialect in SYNC_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return dialect
    return None


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.split("+", 1)[0]


def describe(url: str) -> str:
    """The storage as printed: no password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def storage_url(database_url: str, override: str | None = None) -> str:
    """The study storage's URL: ``override`` (``--storage``) or the project's database turned into one."""
    url = override or database_url
    scheme = _scheme(url)
    if scheme == "sqlite":
        return url if override else sqlite_beside(url)
    if scheme in ("postgresql", "postgres"):
        return url
    raise ValueError(f"study storage {describe(url)!r}: use sqlite:///FILE or postgresql://...")


def open_storage(url: str) -> tuple[BaseStorage, Callable[[], None]]:
    """An Optuna storage for ``url`` (see the module docstring for which kind) and how to close it;
    StudyStorageError (one line, no password) when it cannot be opened."""
    optuna = require_optuna()
    try:
        return _open(optuna, url)
    except Exception as exc:  # whatever the driver raises while connecting means the same to the user
        cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
        reason = " ".join(str(cause).split()) or type(cause).__name__
        raise StudyStorageError(f"study storage {describe(url)} cannot be opened: {reason}") from exc


def _open(optuna: Any, url: str) -> tuple[BaseStorage, Callable[[], None]]:
    if _scheme(url) == "sqlite":
        return _open_sqlite(optuna, url)
    rest = url.split("://", 1)[1]
    dialect = sync_driver()
    if dialect is not None:
        rdb = optuna.storages.RDBStorage(f"postgresql+{dialect}://{rest}")
        return rdb, rdb.engine.dispose
    journal = PostgresJournal(f"postgresql://{rest}")
    return optuna.storages.JournalStorage(journal), journal.close


def _open_sqlite(optuna: Any, url: str) -> tuple[BaseStorage, Callable[[], None]]:
    """Optuna creates its tables in a new file without a lock: runs started together on a new file race it
    (one fails on its version table's unique key, or a table another just made). The loser opens again and
    finds the tables made."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(SQLITE_CREATE_TRIES):
        try:
            rdb = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 30}})
            return rdb, rdb.engine.dispose
        except (IntegrityError, OperationalError) as exc:
            racing = isinstance(exc, IntegrityError) or "already exists" in str(exc) or "locked" in str(exc)
            if not racing or attempt == SQLITE_CREATE_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class _PgSession:
    """One asyncpg connection to ``dsn`` for synchronous callers: asyncpg is asynchronous and Optuna calls
    synchronously, so each call runs the connection's private event loop until its result, in the calling
    thread; calls are serialised (one connection). Not callable from a thread whose own event loop runs.

    No thread of its own: ``tune --jobs`` forks its workers after the parent has used the storage, and a
    worker forked after such a thread had run (and been stopped) could hang in its own connect, creating
    its SSL context: 3 of 80 forked children in a probe, none of 80 without the thread."""

    def __init__(self, dsn: str) -> None:
        import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        try:
            self.conn = self.call(asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S))
        except BaseException:
            self._loop.close()
            raise

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            return self._loop.run_until_complete(coro)

    def close(self) -> None:
        try:
            self.call(self.conn.close())
        finally:
            self._loop.close()


class PostgresJournal:
    """Optuna's journal (append-only log records) in one PostgreSQL table, through asyncpg.

    It has the two methods of Optuna's ``BaseJournalBackend`` (which only calls them); it does not
    subclass it so that this module imports without Optuna.
    """

    def __init__(self, dsn: str) -> None:
        self._pg = _PgSession(dsn)
        try:
            self._pg.call(self._create_table())
        except BaseException:
            self._pg.close()
            raise

    async def _create_table(self) -> None:
        """Create the table once, however many workers start together: PostgreSQL's ``CREATE TABLE IF NOT
        EXISTS`` is not safe against itself (two at once fail on its catalogue's unique index), so the
        creators queue on an advisory lock held until their transaction ends."""
        conn = self._pg.conn
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"tradectl:{JOURNAL_TABLE}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {JOURNAL_TABLE} (seq BIGINT PRIMARY KEY, log TEXT NOT NULL)")

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        rows = self._pg.call(self._pg.conn.fetch(f"SELECT log FROM {JOURNAL_TABLE} WHERE seq >= $1 ORDER BY seq",
                                                 log_number_from))
        return [json.loads(row["log"]) for row in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        conn = self._pg.conn

        async def append() -> None:
            async with conn.transaction():
                # one writer at a time: numbers are handed out without holes and become visible in order
                await conn.execute(f"LOCK TABLE {JOURNAL_TABLE} IN EXCLUSIVE MODE")
                start = await conn.fetchval(f"SELECT COALESCE(MAX(seq) + 1, 0) FROM {JOURNAL_TABLE}")
                await conn.executemany(f"INSERT INTO {JOURNAL_TABLE} (seq, log) VALUES ($1, $2)",
                                       [(start + i, json.dumps(log)) for i, log in enumerate(logs)])
        self._pg.call(append())

    def close(self) -> None:
        self._pg.close()


@contextlib.contextmanager
def study_lock(url: str, name: str) -> Iterator[None]:
    """Held while one process creates or joins study ``name`` and reads and writes the terms it is run on
    (the parameters, data and settings its trials are comparable under). Optuna writes a study's
    attributes one by one, last writer winning: two runs creating one new study with other settings at
    the same instant could each read it bare, each write its own terms, each read back its own and both
    run. Under the lock the second reads what the first wrote and is refused.

    SQLite: a lock file beside the study file (the processes of one machine share it). PostgreSQL (the
    relational storage and the journal alike): an advisory lock of the database, on a connection of its
    own, which every machine reaching the database sees and which ends with the connection if its
    process dies."""
    if _scheme(url) == "sqlite":
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path in ("", ":memory:"):  # a storage of this process alone
            yield
            return
        with locked(Path(path)):
            yield
        return
    session = _PgSession(f"postgresql://{url.split('://', 1)[1]}")
    try:
        session.call(session.conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"tradectl:study:{name}"))
        yield
    finally:
        session.close()  # the lock is the connection's: it ends with it


# -- trials whose process died ------------------------------------------------------------------------


def _machine() -> str | None:
    """This machine and process namespace, or None where that cannot be told (not Linux): the process id of
    a trial is only judged by a process that sees the same ones."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pids = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{socket.gethostname()}/{boot}/{pids}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def fail_lost_trials(url: str, name: str, params: set[str], say: Callable[[str], None]) -> None:
    """Mark FAIL the running trials of study ``name`` whose process on this machine is gone (killed,
    crashed, the machine stopped), saying so, and queue their sets to be run again (``params``: the names a
    complete set has); a trial of another machine is left as it is (its process may well be running) and
    counted as running (see :func:`away`)."""
    optuna = require_optuna()
    me = _machine()
    if me is None:
        return
    storage, close = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler())
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            machine, _, pid = str(t.user_attrs.get("process", "")).rpartition(":")
            if machine != me or not pid.isdigit() or _alive(int(pid)):
                continue
            try:
                storage.set_trial_user_attr(t._trial_id, "lost", f"its process ({pid}) stopped before it finished")
                storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            if set(t.params) != params:  # killed before its set was drawn
                say(f"trial {t.number}: lost, its process ({pid}) stopped before it finished; not counted")
                continue
            study.enqueue_trial(dict(t.params), user_attrs={"again_for": t.number})
            say(f"trial {t.number}: lost, its process ({pid}) stopped before it finished; not counted, its set "
                f"runs again: {', '.join(f'{k}={v}' for k, v in t.params.items())}")
    finally:
        close()


@dataclass(frozen=True, slots=True)
class Away:
    """A running trial whose process is on another machine (or another boot or container of this one): it
    cannot be checked from here, so it is never marked lost from here. ``heard``: when its process last
    wrote that it was alive (by its own clock; None for a trial of a version that did not)."""

    number: int
    host: str
    heard: datetime | None


def away(trial: FrozenTrial) -> Away | None:
    """``trial`` (running) as :class:`Away` when its process cannot be checked from this process, else None."""
    machine, _, _ = str(trial.user_attrs.get("process", "")).rpartition(":")
    me = _machine()
    if machine and machine == me:
        return None
    host = machine.split("/", 1)[0] or str(trial.user_attrs.get("worker", "")).rpartition(":")[0]
    try:
        heard: datetime | None = datetime.fromisoformat(str(trial.user_attrs[ALIVE]))
    except (KeyError, ValueError):
        heard = None
    return Away(trial.number, host or "an unknown machine", heard)


@contextlib.contextmanager
def beating(study: Study, trial_id: int, every: float = BEAT_S) -> Iterator[None]:
    """While a trial runs, write the time (UTC) to it every ``every`` seconds: a run on another machine
    cannot check the trial's process, but can say how long it has not been heard from. Optuna's own
    heartbeat is not used: its relational storage alone has one (not the journal), and it marks a trial
    failed once silent for a grace period, which would fail the trial of a machine that was only
    suspended, and stop that machine's run when it resumes."""
    storage = study._storage
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                storage.set_trial_user_attr(trial_id, ALIVE, datetime.now(UTC).isoformat(timespec="seconds"))
            except Exception:  # noqa: BLE001 - finished meanwhile, or the storage failed: the trial's own writes say so
                return
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name="trial-beat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every)


def stamp_process(study: Study, trial: FrozenTrial) -> None:
    """Write which process runs the trial the moment it exists (the sampler's first hook, before anything
    is drawn), so that a trial killed at any point is judged by :func:`fail_lost_trials`. Through the
    storage, as Optuna's own samplers write a new trial's attributes."""
    study._storage.set_trial_user_attr(trial._trial_id, "process", f"{_machine()}:{os.getpid()}")
