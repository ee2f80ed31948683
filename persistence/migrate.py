"""Schema migrations (Alembic), driven programmatically.

``tradectl db upgrade`` applies them; ``tradectl run`` refuses an out-of-date schema (and upgrades
automatically only on the embedded SQLite default).

Several upgrades may start at once (every replica of a deployment runs one at first start). They
serialise: on PostgreSQL the whole upgrade runs in one transaction holding a transaction-scoped
advisory lock, so the second waits, then finds the schema at head and does nothing; on SQLite the
transaction begins with ``BEGIN IMMEDIATE`` (see :mod:`persistence.db`), which takes the file's
write lock for the same effect. A failure is raised as :class:`MigrationError` with a one-line
reason, never the driver's multi-line text.

Alembic is imported only to migrate (or to compare the models): every ``tradectl run`` checks the schema
first, and on a database already at head that check is one query and a glance at the migration files'
``revision`` lines, which spares the ~10 MB Alembic costs a Raspberry Pi.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from persistence.db import Database
from persistence.errors import TradectlError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_WAIT_S = 300  # how long an upgrade waits for another one before giving up


_WRAPPED = re.compile(r"^<class '([\w.]+)'>: (.*)$")
_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*['"]([^'"]+)['"]\s*$""", re.M)
_DOWN_REVISION = re.compile(r"""^down_revision(?:\s*:[^=]+)?\s*=\s*(?:None|['"]([^'"]+)['"])\s*$""", re.M)


class MigrationError(TradectlError):
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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest migration's id, read from the migration files' ``revision``/``down_revision`` lines. A layout
    this reading does not follow (a merge, a branch, a tuple of parents) is answered by Alembic itself."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("[!_]*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if rev is None or down is None:
            return alembic_head()
        revisions.add(rev.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else alembic_head()


def alembic_head() -> str:
    """Alembic's own answer to :func:`head_revision` (it imports Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database, revision: str = "head") -> str | None:
    """Upgrade to ``revision`` in one transaction; safe to run from several processes at once.

    Returns the revision found once the lock was held (what this upgrade started from)."""

    from alembic import command
    from alembic.runtime.migration import MigrationContext

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
    except Exception as exc:
        raise MigrationError(one_line(exc)) from exc


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (None: never migrated), read with one query. Several rows in
    Alembic's version table (branches) are left to Alembic to explain."""

    def _get(conn: Connection) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        if len(rows) <= 1:
            return str(rows[0]) if rows else None
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_get)


async def schema_status(db: Database) -> tuple[str | None, str]:
    """(current revision, head revision)."""
    return await current_revision(db), head_revision()


async def pending_diff(db: Database) -> list[Any]:
    """Differences between the models and the migrated schema (empty when they match)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import persistence.models  # noqa: F401

    def _diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(_diff)
