"""An aiosqlite connection that runs SQLite in the event loop's own thread.

aiosqlite hands every statement to a worker thread and waits for the answer: two thread hand-offs
per statement, which is most of a statement's cost when the database is private and small. A
backtest's throw-away database has no other user and nothing else to do while it waits, so there the
statements run inline (:class:`persistence.db.Database` with ``inline=True``). Everything above the
driver (SQLAlchemy, the sessions, the SQL) is unchanged.

Not for the service: the loop blocks while SQLite works, and a second connection waiting on a lock
would block the loop that holds it (the backtest uses one writer at a time, as the engine does).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for the worker thread's queue: SQLAlchemy's adapter puts some calls there itself
    (setting the isolation level); they run at once and their future is settled."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, as the worker thread does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection without its worker thread: each call runs where it is awaited."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, 64)
        self._tx = _RunNow()  # type: ignore[assignment]  # aiosqlite's is a Queue; a stand-in

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._open().__await__()

    async def _open(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def connect(database: str, **kwargs: Any) -> InlineConnection:
    """The ``async_creator_fn`` SQLAlchemy's aiosqlite dialect calls with the URL's database path."""
    kwargs.pop("iter_chunk_size", None)
    return InlineConnection(partial(sqlite3.connect, database, **kwargs))
