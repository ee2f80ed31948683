"""Backups of the embedded SQLite database, restoring one, and what to run on PostgreSQL instead.

A backup is made with SQLite's online backup API (``sqlite3.Connection.backup``) in one step: it
reads one consistent snapshot while the service keeps writing (the database is in WAL mode, so the
writer is not blocked), into a temporary file beside the target that is checked and then renamed into
place; a reader of the target never sees half a backup. The copy is switched to the rollback
journal, so it is one self-contained file.

A restore checks the file before anything is touched: a SQLite database, of this project (Alembic's
version table), at a schema revision this version knows (an older one is fine: ``tradectl db
upgrade`` brings it up; an unknown one was written by a newer version and is refused). The current
database and its WAL files are kept beside it as ``<name>.before-restore-<UTC time>``. Refusing to
restore over a running instance is the caller's part (the instance locks live in ``core.app``).

PostgreSQL is not backed up here: ``pg_dump``/``pg_restore`` do it properly, and
:func:`pg_dump_command` prints the command for the configured URL without its password.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from core.ops.scheduler import JobFn, JobResult, JobRun
from core.settings.url_secrets import MASK, redact_url
from exchanges.errors import TradectlError
from persistence.db import Database, normalize_url
from persistence.migrate import alembic_config

_MAGIC = b"SQLite format 3\x00"
_SIDECARS = ("-wal", "-shm")
_BUSY_MS = 30_000


class BackupError(TradectlError):
    """A backup or restore cannot be made; the message says why and what to do. Nothing was changed."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup file holds: its size, schema revision and rows per table."""

    path: Path
    size: int
    revision: str
    tables: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def describe(self) -> str:
        return (f"{self.path} ({_size(self.size)}, schema revision {self.revision}, "
                f"{len(self.tables)} tables, {self.rows} rows)")


@dataclass(frozen=True, slots=True)
class RestoreResult:
    backup: BackupInfo
    database: Path
    kept: Path | None  # the database that was replaced, or None if there was none
    head: str

    @property
    def needs_upgrade(self) -> bool:
        return self.backup.revision != self.head


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite://`` URL; :class:`BackupError` for anything else."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        raise BackupError("not an SQLite database URL")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up or restore")
    return Path(parsed.database)


def _pg_url(url: str) -> str:
    """The URL for libpq tools: plain ``postgresql://`` scheme, no password, secret parameters masked."""
    parsed = make_url(normalize_url(url))
    bare = URL.create("postgresql", username=parsed.username, host=parsed.host, port=parsed.port,
                      database=parsed.database, query=parsed.query)
    shown, _ = redact_url(bare.render_as_string(hide_password=False))
    # a secret in a query parameter is left out too: libpq reads it from PGPASSWORD or ~/.pgpass
    kept = [(k, v) for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(shown).query) if v != MASK]
    return bare.set(query={}).render_as_string(hide_password=False) + (
        f"?{urllib.parse.urlencode(kept)}" if kept else "")


def pg_dump_command(url: str, path: Path) -> str:
    """The ``pg_dump`` command that backs up the configured database (custom format, for pg_restore)."""
    return shlex.join(["pg_dump", "--format=custom", "--no-owner", f"--file={path}", f"--dbname={_pg_url(url)}"])


def pg_restore_command(url: str, path: Path) -> str:
    """The ``pg_restore`` command that puts such a dump back (replacing what the dump holds)."""
    return shlex.join(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                       f"--dbname={_pg_url(url)}", str(path)])


# -- reading a database file ---------------------------------------------------------------------


def _open_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_MS / 1000)


def _inspect(conn: sqlite3.Connection, path: Path) -> BackupInfo:
    """Check the file is whole and a database of this project, and count its rows."""
    try:
        ok = conn.execute("PRAGMA quick_check").fetchone()
        if ok is None or ok[0] != "ok":
            raise BackupError(f"{path} is damaged: {ok[0] if ok else 'no answer from the integrity check'}")
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        if "alembic_version" not in names:
            raise BackupError(f"{path} is an SQLite database but not one of tradectl (it has no schema revision)")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if row is None:
            raise BackupError(f"{path} has an empty schema revision table: not a tradectl database")
        tables = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                  for name in names if name != "alembic_version"}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    return BackupInfo(path=path, size=path.stat().st_size, revision=str(row[0]), tables=tables)


def _check_is_sqlite(path: Path) -> None:
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    with path.open("rb") as fh:
        if fh.read(len(_MAGIC)) != _MAGIC:
            raise BackupError(f"{path} is not an SQLite database")


@contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A fresh temporary file name in ``path``'s directory, deleted (with its WAL files) unless renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{s}") for s in _SIDECARS)):
            leftover.unlink(missing_ok=True)


def _copy_database(source: sqlite3.Connection, target: Path) -> None:
    """One consistent snapshot of ``source`` into ``target`` as a single file, flushed to disk."""
    with closing(sqlite3.connect(target)) as dst:
        source.backup(dst)  # pages=-1: the whole database in one step, one read snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.commit()
    with target.open("rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system can sync a directory
    finally:
        os.close(fd)


# -- backup --------------------------------------------------------------------------------------


def backup_sqlite(database: Path, target: Path) -> BackupInfo:
    """Copy ``database`` to ``target`` while it may be in use; :class:`BackupError` leaves ``target`` alone."""
    _check_is_sqlite(database)
    if target.resolve() == database.resolve():
        raise BackupError("the backup would overwrite the database itself: choose another path")
    with _temporary_beside(target) as tmp:
        try:
            # read-write, though only read: the last connection to close folds the WAL back and deletes
            # it, where a read-only one would leave the -wal and -shm files behind
            with closing(sqlite3.connect(database, timeout=_BUSY_MS / 1000)) as src:
                _copy_database(src, tmp)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot back up {database}: {exc}") from exc
        with closing(sqlite3.connect(tmp)) as check:
            info = _inspect(check, tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    return BackupInfo(path=target, size=info.size, revision=info.revision, tables=info.tables)


# -- restore -------------------------------------------------------------------------------------


def check_backup(path: Path) -> BackupInfo:
    """What ``path`` holds, if it is a tradectl database this version can run (after ``db upgrade``)."""
    _check_is_sqlite(path)
    with closing(_open_ro(path)) as conn:
        info = _inspect(conn, path)
    _check_revision(info)
    return info


def _check_revision(info: BackupInfo) -> str:
    from alembic.script import ScriptDirectory  # only here: the service imports this module for its backup job

    scripts = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in scripts.walk_revisions()}
    if info.revision not in known:
        raise BackupError(f"{info.path} has schema revision {info.revision}, which this version does not know: "
                          "it was written by a newer tradectl; restore it with that version")
    head = scripts.get_current_head()
    assert head is not None
    return head


def restore_sqlite(backup: Path, database: Path, *, now: datetime | None = None) -> RestoreResult:
    """Put ``backup`` in place of ``database``, keeping the current one beside it.

    Everything is checked on a copy made next to the database first; on any error the database and the
    backup file are as they were. The caller must have made sure no instance is running on ``database``.
    """
    info = check_backup(backup)
    if backup.resolve() == database.resolve():
        raise BackupError("that is the database itself: nothing to restore")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    if kept.exists():
        raise BackupError(f"{kept} exists already: try again in a second")
    with _temporary_beside(database) as tmp:
        try:
            with closing(_open_ro(backup)) as src:
                _copy_database(src, tmp)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot read {backup}: {exc}") from exc
        with closing(sqlite3.connect(tmp)) as check:
            copied = _inspect(check, backup)
        head = _check_revision(copied)
        had_database = database.exists()
        # The database path must name a database at every moment: a crash between moving the current one
        # aside and putting the backup in place would otherwise leave no file, and the next start would
        # create an empty database. So the current one is kept under a second name first (a hard link,
        # or a copy where links are not possible), and the backup then replaces it in one rename.
        # The WAL files go with their database: left behind, they would be replayed into the restored one.
        moved: list[tuple[Path, Path]] = []
        linked = False
        try:
            if had_database:
                _keep_copy(database, kept)
                linked = True
            for suffix in _SIDECARS:
                current = Path(f"{database}{suffix}")
                if current.exists():
                    os.replace(current, Path(f"{kept}{suffix}"))
                    moved.append((current, Path(f"{kept}{suffix}")))
            os.replace(tmp, database)
        except OSError:
            for current, aside in reversed(moved):  # put the current database back as it was
                os.replace(aside, current)
            if linked:
                kept.unlink(missing_ok=True)
            raise
        _fsync_dir(database.parent)
    return RestoreResult(backup=info, database=database, kept=kept if had_database else None, head=head)


# -- the scheduled job ---------------------------------------------------------------------------


def _keep_copy(database: Path, kept: Path) -> None:
    """``kept`` names the same bytes as ``database`` without moving it: a hard link, else a copy."""
    try:
        os.link(database, kept)
    except OSError:
        shutil.copy2(database, kept)


def backup_name(database: Path, at: datetime) -> str:
    return f"{database.stem}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.db"


def prune_backups(directory: Path, database: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` scheduled backups of ``database`` in ``directory``.

    Only files named as :func:`backup_name` names them are considered: nothing else there is touched.
    """
    pattern = re.compile(rf"^{re.escape(database.stem)}-\d{{8}}T\d{{6}}Z\.db$")
    ours = sorted(p for p in directory.iterdir() if pattern.match(p.name) and p.is_file())
    removed = ours[:-keep] if keep > 0 else ours
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def backup_job(db: Database, *, directory: Path, keep: int) -> JobFn:
    """The scheduled backup of the embedded database, keeping the newest ``keep`` files.

    On PostgreSQL the job fails on every run with the ``pg_dump`` advice (a failed job raises an
    alert): switching scheduled backups on there must not look as if it did something.
    """

    async def run(job: JobRun) -> JobResult:
        if not db.is_sqlite:
            raise BackupError("scheduled backups are for the embedded SQLite database; on PostgreSQL use "
                              "pg_dump (docs/operations.md) and set schedule.backup_at to empty")
        source = sqlite_path(db.url)
        target = directory / backup_name(source, job.scheduled_for if not job.manual else job.started_at)

        def work() -> tuple[BackupInfo, list[Path]]:
            info = backup_sqlite(source, target)
            return info, prune_backups(directory, source, keep)

        info, removed = await asyncio.to_thread(work)
        return JobResult(detail=f"wrote {info.describe()}; removed {len(removed)} older")

    return run
