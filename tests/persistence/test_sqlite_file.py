"""The embedded database file shared by processes that open it at the same moment."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from persistence.db import Database


def test_a_new_file_opened_while_another_process_begins_writing_waits_for_it(tmp_path: Path) -> None:
    """What a second `db upgrade` at a replica's first start meets: the file still in rollback mode, the
    first process holding its write lock. Switching to WAL then cannot use SQLite's busy wait (it refuses
    at once, "database is locked"); the open waits for the lock to go instead of failing."""
    path = tmp_path / "shared.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE first (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO first VALUES (1)")
    released = threading.Timer(0.4, lambda: other.execute("COMMIT"))
    released.start()

    async def open_and_write() -> tuple[str, int]:
        db = Database(f"sqlite:///{path}")
        await db.start()
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("INSERT INTO first VALUES (2)"))
            async with db.engine.connect() as conn:
                mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
                rows = (await conn.execute(text("SELECT count(*) FROM first"))).scalar_one()
            return str(mode), int(rows)
        finally:
            await db.stop()

    try:
        assert asyncio.run(open_and_write()) == ("wal", 2)
    finally:
        released.join()
        other.close()
