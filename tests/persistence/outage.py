"""A database outage a test can switch on and off, the same way on SQLite and PostgreSQL.

The chosen tables are renamed away from a connection of the outage's own, so every statement of
the code under test that touches them fails with the database's own error (``no such table`` /
``relation does not exist``) until they are renamed back; nothing of the code under test is
replaced. Tables are renamed in a fixed order, each rename committed at once.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import text

from persistence.db import Database


class TablesAway:
    def __init__(self, db: Database, *tables: str) -> None:
        self._handle = Database(db.url, schema=db.schema)
        self.tables = tables
        self.active = False
        self.outages = 0

    async def __aenter__(self) -> TablesAway:
        await self._handle.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.end()
        await self._handle.stop()

    async def start(self) -> None:
        if self.active:
            return
        for table in self.tables:
            async with self._handle.begin() as conn:
                await conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        self.active = True
        self.outages += 1

    async def end(self) -> None:
        if not self.active:
            return
        for table in self.tables:
            async with self._handle.begin() as conn:
                await conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
        self.active = False
