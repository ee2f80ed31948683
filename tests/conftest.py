"""Shared fixtures: a migrated database on SQLite and on the real PostgreSQL.

PostgreSQL comes from ``TRADECTL_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test gets its own schema, dropped afterwards. When PostgreSQL is unreachable the PostgreSQL
variants are skipped with a loud notice, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from persistence.db import Database
from persistence.migrate import upgrade

# Property tests explore new random examples on every local run (a failure prints how to replay it);
# under CI=true they draw the same examples every time, so a landing is decided by the code, not the draw.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
    settings.load_profile("ci")

PG_URL = os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_pg_state: dict[str, Any] = {}


def _probe_pg() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    if "reason" in _pg_state:
        return _pg_state["reason"]

    async def probe() -> None:
        import asyncpg

        dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
        reason = None
    except Exception as exc:  # noqa: BLE001
        reason = f"PostgreSQL not reachable at {PG_URL}: {exc}"
    _pg_state["reason"] = reason
    return reason


def pytest_sessionstart(session: pytest.Session) -> None:
    reason = _probe_pg()
    if reason and IN_CI:
        raise pytest.UsageError(f"{reason} -- CI=true requires PostgreSQL; start it before running the tests")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = _pg_state.get("reason")
    if reason:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(reason)
        terminalreporter.write_line("Start PostgreSQL (or set TRADECTL_TEST_PG_URL) to run them.")


def require_pg() -> None:
    reason = _probe_pg()
    if reason:
        pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], tuple[str, str | None]]:
    """Returns (url, schema) for a fresh, empty database of the parametrized kind."""
    kind = request.param
    schemas: list[str] = []

    def make() -> tuple[str, str | None]:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path}/t{secrets.token_hex(3)}.db", None
        require_pg()
        schema = "t_" + secrets.token_hex(6)
        schemas.append(schema)
        return PG_URL, schema

    yield make  # type: ignore[misc]
    if schemas:
        async def drop() -> None:
            import asyncpg

            conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
            for schema in schemas:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.close()

        asyncio.run(drop())


async def _create_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.close()


@pytest.fixture
async def empty_db(db_url_factory: Callable[[], tuple[str, str | None]]) -> AsyncIterator[Database]:
    url, schema = db_url_factory()
    if schema:
        await _create_schema(url, schema)
    db = Database(url, schema=schema)
    await db.start()
    yield db
    await db.stop()


@pytest.fixture
async def db(empty_db: Database) -> AsyncIterator[Database]:
    """A database migrated to head, on SQLite and on PostgreSQL."""
    await upgrade(empty_db)
    yield empty_db


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/one.db")
    await db.start()
    await upgrade(db)
    yield db
    await db.stop()


@pytest.fixture
def pg_database_url() -> Any:
    """A whole fresh PostgreSQL database (for tests that start service processes)."""
    require_pg()
    name = "tradectl_t_" + secrets.token_hex(5)
    admin = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(admin)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
