"""``INSERT ... ON CONFLICT`` for both engines (PostgreSQL and SQLite share the syntax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert


def upsert(dialect: str, table: Any, values: dict[str, Any], keys: Sequence[str], update: Sequence[str] | None = None) -> Insert:
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    stmt = ins.values(**values)
    cols = [c for c in (update if update is not None else values) if c not in keys]
    if not cols:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols})


def insert_ignore(dialect: str, table: Any, values: dict[str, Any], keys: Sequence[str]) -> Insert:
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return ins.values(**values).on_conflict_do_nothing(index_elements=list(keys))
