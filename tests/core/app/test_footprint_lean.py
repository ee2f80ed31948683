"""What a start of `tradectl run` on an embedded database already at head does not load: Alembic (the schema
check is one query and the migration files' revision lines), httpx (no webhook is sent), tenacity (nothing is
retried), cryptography (no vault is opened), SQLAlchemy's PostgreSQL dialect (the database is SQLite) and TA-Lib's
abstract interface (the strategies call TA-Lib's functions directly). Each costs memory on a Raspberry Pi at every
start.

The cheap schema check must agree with Alembic's own answers, or the service would migrate when it need not
(or, worse, not when it must)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from persistence.db import Database
from persistence.migrate import alembic_head, current_revision, head_revision, upgrade
from tests.core.app.test_footprint import PLATFORMS, loaded_by, present
from tests.core.app.test_service import env_for

LAZY = ("alembic", "httpx", "tenacity", "cryptography", "sqlalchemy.dialects.postgresql", "talib.abstract")


def test_a_start_on_a_database_at_head_loads_none_of_what_it_does_not_use(tmp_path: Path) -> None:
    env = env_for(tmp_path, TRADECTL_CHAT__CONSOLE="on")
    assert subprocess.run([sys.executable, "-m", "core.app.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60).returncode == 0
    code, out, modules = loaded_by(["run", "--exit-after-input"], env, tmp_path, stdin="/status\n")
    assert code == 0 and "equity" in out
    assert "persistence.migrate" in modules and "bot.notify.senders" in modules  # the check sees imports
    assert present(modules, (*PLATFORMS, *LAZY)) == []


def test_the_first_start_still_migrates_an_empty_database(tmp_path: Path) -> None:
    env = env_for(tmp_path, TRADECTL_CHAT__CONSOLE="on")
    code, out, modules = loaded_by(["run", "--exit-after-input"], env, tmp_path, stdin="/status\n")
    assert code == 0 and "equity" in out
    assert "alembic" in modules


def test_the_cheap_head_is_alembics_head() -> None:
    assert head_revision() == alembic_head()


async def test_the_cheap_current_revision_is_alembics_on_an_empty_and_a_migrated_database(empty_db: Database) -> None:
    def alembics(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async def by_alembic() -> str | None:
        async with empty_db.engine.connect() as conn:
            return await conn.run_sync(alembics)

    assert await current_revision(empty_db) is None and await by_alembic() is None
    await upgrade(empty_db, "0002")
    assert await current_revision(empty_db) == "0002" == await by_alembic()
    await upgrade(empty_db)
    assert await current_revision(empty_db) == head_revision() == await by_alembic()
