"""Engine mode's databases start from one migrated schema per process, copied for each run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.backtest import runner
from persistence.db import Database
from persistence.migrate import upgrade


def _schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT type, name, COALESCE(sql, '') FROM sqlite_master "
                                   "WHERE name NOT LIKE 'sqlite_%'").fetchall())


def _version(path: Path) -> list[tuple[str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchall()


async def test_the_copied_schema_is_the_migrated_one_and_holds_no_rows(tmp_path: Path) -> None:
    fresh = Database(f"sqlite:///{tmp_path}/fresh.db")
    await fresh.start()
    await upgrade(fresh)
    await fresh.stop()

    (tmp_path / "work").mkdir()
    copy = tmp_path / "copy.db"
    copy.write_bytes(await runner._migrated_schema(tmp_path / "work"))
    assert _schema(copy) == _schema(tmp_path / "fresh.db")
    assert _version(copy) == _version(tmp_path / "fresh.db") != []
    with sqlite3.connect(copy) as conn:
        tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'")]
        assert tables and all(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone() == (0,) for t in tables)
    assert list((tmp_path / "work").iterdir()) == []  # nothing left beside the run's own file

    again = await runner._migrated_schema(tmp_path / "work")  # later runs copy, they do not migrate again
    assert again is await runner._migrated_schema(tmp_path / "work")
