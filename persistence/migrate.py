"""Schema migrations (Alembic), driven programmatically.

``tradectl db upgrade`` applies them; ``tradectl run`` refuses an out-of-date schema (and upgrades
automatically only on the embedded SQLite default).

Several upgrades may start at once (every replica of a deployment runs one at first start). They
serialise: on PostgreSQL the whole upgrade runs in one transaction holding a transaction-scoped
advisory lock, so the second waits, then finds the schema at head and does nothing; on SQLite the
transaction begins with ``BEGIN IMMEDIATE`` (see :mod:`persistence.db`), which takes the file's
write lock for the same effect. A failure is raised as :class:`MigrationError` with a one-line
reason, never the driver's multi-line text.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from persistence.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_WAIT_S = 300  # how long an upgrade waits for another one before giving up


_WRAPPED = re.compile(r"^<class '([\w.]+)'>: (.*)$")


class MigrationError(Exception):
    """An upgrade failed; the message is one line that says why."""


def lock_key(schema: str | None) -> int:
    """The advisory lock id for migrations of one schema (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"tradectl:migrations:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def one_line(exc: BaseException) -> str:
    """The essence of a database error: the driver's own first line, without SQL or links."""
    if isinstance(exc, MigrationError):
        return str(exc)
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    message = lines[0] if lines else ""
    name = type(cause).__name__
    wrapped = _WRAPPED.match(message)  # asyncpg through SQLAlchemy: "<class 'asyncpg...X'>: text"
    if wrapped:
        name, message = wrapped.group(1).rsplit(".", 1)[-1], wrapped.group(2)
    if name in {"LockNotAvailableError", "QueryCanceledError"} or "lock timeout" in message:
        return f"another `tradectl db upgrade` held the migration lock for more than {LOCK_WAIT_S} s"
    return f"{name}: {message}" if message else name


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database, revision: str = "head") -> str | None:
    """Upgrade to ``revision`` in one transaction; safe to run from several processes at once.

    Returns the revision found once the lock was held (what this upgrade started from)."""

    def _run(conn: Connection) -> str | None:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        return before

    try:
        async with db.engine.begin() as conn:
            if not db.is_sqlite:
                await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"))
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(db.schema)})
            return await conn.run_sync(_run)
    except Exception as exc:  # noqa: BLE001 - driver, connection and Alembic errors alike
        raise MigrationError(one_line(exc)) from exc


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
