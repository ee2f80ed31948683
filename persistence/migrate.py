"""Schema migrations (Alembic), driven programmatically.

``tradectl db upgrade`` applies them; ``tradectl run`` refuses an out-of-date schema (and upgrades
automatically only on the embedded SQLite default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from persistence.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database, revision: str = "head") -> None:
    def _run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(db: Database) -> str | None:
    def _get(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_get)


async def schema_status(db: Database) -> tuple[str | None, str]:
    """(current revision, head revision)."""
    return await current_revision(db), head_revision()


async def pending_diff(db: Database) -> list[Any]:
    """Differences between the models and the migrated schema (empty when they match)."""
    from alembic.autogenerate import compare_metadata
    from sqlmodel import SQLModel

    import persistence.models  # noqa: F401

    def _diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(_diff)
