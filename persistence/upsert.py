"""``INSERT ... ON CONFLICT`` for both engines (PostgreSQL and SQLite share the syntax).

SQLAlchemy's PostgreSQL dialect (~2 MiB: its types, ranges, JSON and asyncpg modules) is imported only when a
statement for PostgreSQL is built, so a service on SQLite never loads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, inspect
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Insert
from sqlmodel import SQLModel

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql



def table_of(model: type[Any]) -> Table:
    """The Core ``Table`` behind a SQLModel table class (sqlmodel's typing does not declare ``__table__``)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table


def dialect_insert(dialect: str, table: Table | type[SQLModel]) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` into ``table`` in the dialect that has ``ON CONFLICT`` (``dialect``: the database's name)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(dialect: str, table: Table | type[SQLModel], values: dict[str, Any], keys: Sequence[str],
           update: Sequence[str] | None = None) -> Insert:
    """Insert ``values``; on a conflict on ``keys``, update the ``update`` columns (default: all given)."""
    return upsert_rows(dialect, table, update if update is not None else list(values), keys).values(**values)


def upsert_rows(dialect: str, table: Table | type[SQLModel], columns: Sequence[str], keys: Sequence[str]) -> Insert:
    """The statement of :func:`upsert` without values, built once and executed with a list of rows
    (each a dict of ``columns``): a hot writer then builds no statement per row."""
    ins = dialect_insert(dialect, table)
    cols = [c for c in columns if c not in keys]
    if not cols:
        return ins.on_conflict_do_nothing(index_elements=list(keys))
    return ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})


def insert_ignore(dialect: str, table: Table | type[SQLModel], values: dict[str, Any], keys: Sequence[str]) -> Insert:
    ins = dialect_insert(dialect, table)
    return ins.values(**values).on_conflict_do_nothing(index_elements=list(keys))
