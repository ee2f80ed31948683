"""Watch the statements a piece of code sends to the database (a real engine event, not a mock)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from persistence.db import Database

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement executed on ``db`` inside the block, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.strip())

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.upper().startswith(WRITES)]
