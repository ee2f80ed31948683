"""The database handle: one async engine, sessions, the database clock.

PostgreSQL goes through asyncpg, the embedded default through aiosqlite. On SQLite every
transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers (several processes on one
file) serialise instead of failing half-way, and WAL mode lets readers continue meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from persistence.errors import TradectlError

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseError(TradectlError):
    """The database is unreachable or misconfigured; the message says what to do."""


def normalize_url(url: str) -> str:
    """Accept the URLs people write and pick the async driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise DatabaseError(f"unsupported database URL scheme {parsed.drivername!r}: use postgresql:// or sqlite://")


def redacted_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """Owns the engine. ``start()``/``stop()`` are safe to call twice."""

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False, inline: bool = False) -> None:
        """``inline`` (SQLite only, for a private database such as a backtest's): statements run in the
        event loop's thread, not aiosqlite's worker (see :mod:`persistence.inline_sqlite`)."""
        self.url = normalize_url(url)
        self._dialect = make_url(self.url).get_backend_name()  # asked on hot paths: parse the URL once
        self._inline = inline
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise DatabaseError(f"invalid schema name {schema!r}")
        self.schema = schema
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        return self._dialect

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("database not started")
        return self._engine

    async def start(self) -> None:
        if self._engine is not None:
            return
        kwargs: dict[str, Any] = {"echo": self._echo}
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_S}
            if self._inline:
                from persistence import inline_sqlite

                kwargs["connect_args"] = {"timeout": 0, "async_creator_fn": inline_sqlite.connect}
        else:
            settings = {"timezone": "UTC", "application_name": "tradectl"}
            if self.schema:
                settings["search_path"] = self.schema
            kwargs["connect_args"] = {"server_settings": settings, "timeout": 10}
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 5
            kwargs["max_overflow"] = 10
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(engine)
            # one option view for every read: building it costs more than a small read does
            self._reader = engine.execution_options(tradectl_read=True)
        self._engine = engine

    async def stop(self) -> None:
        if self._engine is not None:
            engine, self._engine, self._reader = self._engine, None, None
            await engine.dispose()

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise DatabaseError(f"cannot reach the database at {redacted_url(self.url)}: {exc}") from exc

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error.

        A task cancelled inside the block (a component stopping) still rolls back and returns its
        connection before the cancellation goes on: otherwise a half-closed connection would keep
        SQLite's write lock until garbage collection, and every other writer would wait for it.
        """
        async with self._transaction(self.engine) as session:
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session. On SQLite it begins a deferred transaction, so readers never queue
        behind writers for the write lock (WAL lets them read a consistent snapshot meanwhile)."""
        async with self._transaction(self._read_engine) as session:
            yield session

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in one write transaction, with the cancellation safety of :meth:`session`."""
        async with self._core(self.engine) as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for reads (a deferred transaction on SQLite, like :meth:`read`)."""
        async with self._core(self._read_engine) as conn:
            yield conn

    @property
    def _read_engine(self) -> AsyncEngine:
        """On SQLite, transactions begin deferred (``BEGIN``), not ``BEGIN IMMEDIATE``: reads take no write lock."""
        return self._reader if self._reader is not None else self.engine

    @staticmethod
    @asynccontextmanager
    async def _core(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        conn = engine.connect()
        await conn.start()
        async with _settled(conn):
            await conn.begin().start()
            yield conn

    @staticmethod
    @asynccontextmanager
    async def _transaction(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
        session = AsyncSession(engine, expire_on_commit=False)
        async with _settled(session):
            await session.begin()
            yield session

    async def now(self) -> datetime:
        """The database clock (leases use it, never the host clock)."""
        async with self.connect() as conn:
            if self.is_sqlite:
                raw = (await conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))).scalar_one()
                return datetime.fromisoformat(raw).replace(tzinfo=UTC)
            value = (await conn.execute(text("SELECT now()"))).scalar_one()
            if not isinstance(value, datetime):
                raise DatabaseError(f"the database clock answered {type(value).__name__}, not a timestamp")
            return value.astimezone(UTC)


@asynccontextmanager
async def _settled(handle: AsyncConnection | AsyncSession) -> AsyncIterator[None]:
    """Commit on success, roll back on error, close in every case — each step to its end."""
    try:
        yield
    except BaseException:
        await _to_the_end(handle.rollback())
        raise
    else:
        try:
            await _to_the_end(handle.commit())
        except BaseException:
            await _to_the_end(handle.rollback())
            raise
    finally:
        await _to_the_end(handle.close())


async def _to_the_end(step: Awaitable[None]) -> None:
    """Await ``step`` to completion even if the caller is cancelled meanwhile; the cancellation is
    re-raised afterwards. For the few steps that must not be cut short: commit, rollback, close."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


SQLITE_BUSY_S = 30  # how long a statement waits for another connection's lock on the file


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode, waiting (up to ``SQLITE_BUSY_S``) while another process holds its lock.

    A file not yet in WAL (a new one) changes mode under an exclusive lock, and SQLite refuses that at once
    with "database is locked", without its busy wait, when another connection is writing, as a second
    replica's first `db upgrade` is. This runs on the driver's own thread, so the pause blocks no loop."""
    deadline = time.monotonic() + SQLITE_BUSY_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:  # what aiosqlite's adapted connection raises, too
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_S * 1000}")
        _switch_to_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("tradectl_read") else "BEGIN IMMEDIATE")
