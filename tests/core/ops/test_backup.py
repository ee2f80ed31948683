"""Backups of the embedded database: consistent while written to, restored only when it is safe, kept N deep."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from core.ops.backup import (
    BackupError,
    BackupInfo,
    backup_job,
    backup_sqlite,
    pg_dump_command,
    pg_restore_command,
    restore_sqlite,
    sqlite_path,
)
from core.ops.scheduler import JobRun, specs_from_settings
from exchanges.clock import SimClock
from persistence.db import Database
from persistence.migrate import current_revision, head_revision, upgrade
from tests.core.ops.test_scheduler import make, schedule
from tests.core.waiting import eventually

BATCH = 10  # the writer commits rows ten at a time: a consistent copy holds a multiple of ten


def migrated(path: Path, revision: str = "head") -> Path:
    """A database of the project at ``revision``, with a table of numbered rows for the tests."""

    async def make() -> None:
        db = Database(f"sqlite:///{path}")
        await db.start()
        try:
            await upgrade(db, revision)
            async with db.begin() as conn:
                await conn.execute(text("CREATE TABLE batches (batch INTEGER NOT NULL, n INTEGER NOT NULL)"))
        finally:
            await db.stop()

    asyncio.run(make())
    return path


def revision_of(path: Path) -> str | None:
    async def read() -> str | None:
        db = Database(f"sqlite:///{path}")
        await db.start()
        try:
            return await current_revision(db)
        finally:
            await db.stop()

    return asyncio.run(read())


def rows(path: Path, table: str = "batches") -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def add_rows(path: Path, count: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO batches VALUES (0, ?)", [(i,) for i in range(count)])
        conn.execute("COMMIT")
    finally:
        conn.close()


def files_in(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


class Writer(threading.Thread):
    """Another process's worth of writing, as the service does it: WAL mode, ``BEGIN IMMEDIATE``."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.batches, self.stop = path, 0, threading.Event()

    def reached(self, batches: int) -> bool:
        return self.batches >= batches

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        while not self.stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO batches VALUES (?, ?)", [(self.batches, i) for i in range(BATCH)])
            conn.execute("COMMIT")
            self.batches += 1
        conn.close()


async def test_a_backup_taken_while_a_writer_writes_is_consistent_and_opens(tmp_path: Path) -> None:
    source = await asyncio.to_thread(migrated, tmp_path / "live.db")
    writer = Writer(source)
    writer.start()
    try:
        await eventually(partial(writer.reached, 20), what="the writer to get going")
        infos = []
        for i in range(5):
            infos.append(await asyncio.to_thread(backup_sqlite, source, tmp_path / "out" / f"copy{i}.db"))
            await eventually(partial(writer.reached, writer.batches + 5), what="more writes between backups")
    finally:
        writer.stop.set()
        writer.join()
    await asyncio.to_thread(check_copies, infos, tmp_path / "out")


def check_copies(infos: list[BackupInfo], directory: Path) -> None:
    counts = [info.tables["batches"] for info in infos]
    assert all(c > 0 and c % BATCH == 0 for c in counts), counts  # never half a transaction
    assert counts == sorted(counts) and counts[0] < counts[-1]  # each a later snapshot, taken during the writes
    for info in infos:
        assert rows(info.path) == info.tables["batches"]
        assert info.revision == head_revision() and info.size == info.path.stat().st_size
        assert revision_of(info.path) == head_revision()  # the project's own database handle opens it
    assert sorted(p.name for p in directory.iterdir()) == [f"copy{i}.db" for i in range(5)]  # one file each, no temp


def test_a_backup_of_a_missing_database_fails_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no such file"):
        backup_sqlite(tmp_path / "absent.db", tmp_path / "out" / "b.db")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_restore_round_trip_keeps_the_replaced_database(tmp_path: Path) -> None:
    live = migrated(tmp_path / "data" / "tradectl.db")
    add_rows(live, 7)
    info = backup_sqlite(live, tmp_path / "b.db")
    add_rows(live, 5)  # written after the backup: the restore takes these away, the kept copy has them
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = restore_sqlite(tmp_path / "b.db", live, now=at)
    assert rows(live) == 7 and result.backup.tables == info.tables
    assert result.kept == live.with_name("tradectl.db.before-restore-20260102T030405Z")
    assert rows(result.kept) == 12
    assert not result.needs_upgrade
    assert (tmp_path / "b.db").exists()  # the backup itself stays where it was
    assert sorted(p.name for p in live.parent.iterdir()) == [live.name, result.kept.name]


def test_restore_moves_a_crashed_instances_wal_aside_with_its_database(tmp_path: Path) -> None:
    live = migrated(tmp_path / "tradectl.db")
    backup_sqlite(live, tmp_path / "b.db")
    holder = sqlite3.connect(live, isolation_level=None)  # keeps the WAL file alive, as a killed process would
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("INSERT INTO batches VALUES (1, 1)")
    assert Path(f"{live}-wal").exists()
    result = restore_sqlite(tmp_path / "b.db", live)
    holder.close()
    assert result.kept is not None
    assert rows(live) == 0  # a stale WAL left beside the restored file would have replayed the row into it
    assert rows(result.kept) == 1


def test_an_older_schema_is_restored_and_needs_an_upgrade(tmp_path: Path) -> None:
    old = migrated(tmp_path / "old.db", "0006")
    result = restore_sqlite(old, tmp_path / "tradectl.db")
    assert result.backup.revision == "0006" and result.needs_upgrade and result.kept is None
    assert rows(tmp_path / "tradectl.db") == 0


@pytest.mark.parametrize("make_bad", ["text", "foreign", "newer", "missing", "damaged"])
def test_a_bad_backup_is_refused_and_nothing_changes(tmp_path: Path, make_bad: str) -> None:
    live = migrated(tmp_path / "data" / "tradectl.db")
    add_rows(live, 3)
    bad = tmp_path / "bad.db"
    if make_bad == "text":
        bad.write_text("not a database\n" * 100)
        expected = "not an SQLite database"
    elif make_bad == "foreign":
        with closing(sqlite3.connect(bad)) as conn:
            conn.execute("CREATE TABLE notes (x TEXT)")
            conn.commit()
        expected = "not one of tradectl"
    elif make_bad == "newer":
        backup_sqlite(live, bad)
        with closing(sqlite3.connect(bad)) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
            conn.commit()
        expected = "newer tradectl"
    elif make_bad == "missing":
        expected = "no such file"
    else:
        backup_sqlite(live, bad)
        data = bytearray(bad.read_bytes())
        data[4096:4096 * 3] = b"\xff" * 8192  # the pages after the header
        bad.write_bytes(bytes(data))
        expected = "damaged|not a readable"
    before = files_in(live.parent)
    bad_before = bad.read_bytes() if bad.exists() else None
    with pytest.raises(BackupError, match=expected):
        restore_sqlite(bad, live)
    assert files_in(live.parent) == before  # the database untouched, no temporary file left
    assert (bad.read_bytes() if bad.exists() else None) == bad_before
    assert rows(live) == 3


def test_postgres_gets_the_pg_dump_command_without_the_password() -> None:
    url = "postgresql://trader:pa%40ss@db.internal:5433/books?sslmode=require&password=other"
    dump = pg_dump_command(url, Path("/backups/books.dump"))
    assert dump == ("pg_dump --format=custom --no-owner --file=/backups/books.dump "
                    "'--dbname=postgresql://trader@db.internal:5433/books?sslmode=require'")
    restore = pg_restore_command("postgres://trader:secret@db/books", Path("b.dump"))
    assert "secret" not in restore and "pa%40ss" not in dump and "other" not in dump
    assert restore.endswith("--dbname=postgresql://trader@db/books b.dump")
    with pytest.raises(BackupError):
        sqlite_path(url)


# -- the scheduled job ---------------------------------------------------------------------------


def test_the_backup_job_is_off_by_default_and_on_at_its_time() -> None:
    assert "backup" not in {s.name for s in specs_from_settings(schedule())}
    [spec] = specs_from_settings(schedule(backup_at="02:15"))
    assert (spec.name, spec.schedule) == ("backup", "daily 02:15")


async def test_the_scheduled_backup_runs_daily_and_keeps_the_newest_n(sqlite_db: Database, tmp_path: Path) -> None:
    directory = tmp_path / "backups"
    directory.mkdir()
    (directory / "notes.txt").write_text("not a backup")
    (directory / "other-20200101T000000Z.db").write_bytes(b"another database's backup")
    settings = schedule(backup_at="02:15", timezone="UTC", backup_dir=directory, backup_keep=3)
    job = backup_job(sqlite_db, directory=settings.backup_dir, keep=settings.backup_keep)
    clock = SimClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    sched = make(sqlite_db, settings, {"backup": job}, clock)
    outcomes = []
    for _ in range(5):
        clock.advance(timedelta(minutes=16))  # 02:16, the run is due
        outcomes += await sched.tick()
        clock.advance(timedelta(days=1) - timedelta(minutes=16))
    assert [o[2] for o in outcomes] == ["finished"] * 5
    stem = sqlite_path(sqlite_db.url).stem
    assert sorted(p.name for p in directory.iterdir()) == sorted([
        "notes.txt", "other-20200101T000000Z.db",
        *(f"{stem}-202603{day:02}T021500Z.db" for day in (3, 4, 5))])
    newest = directory / f"{stem}-20260305T021500Z.db"
    with closing(sqlite3.connect(newest)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()


async def test_the_scheduled_backup_on_postgres_fails_saying_to_use_pg_dump(tmp_path: Path) -> None:
    job = backup_job(Database("postgresql://u:p@127.0.0.1:1/x"), directory=tmp_path, keep=3)
    now = datetime(2026, 3, 1, 2, 15, tzinfo=UTC)
    with pytest.raises(BackupError, match="pg_dump"):
        await job(JobRun("backup", now, now))
    assert not await asyncio.to_thread(lambda: list(tmp_path.iterdir()))
