"""``INSERT ... ON CONFLICT`` for both engines (PostgreSQL and SQLite share the syntax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert
from sqlmodel import SQLModel


def table_of(model: type[Any]) -> Table:
    """The Core ``Table`` behind a SQLModel table class (sqlmodel's typing does not declare ``__table__``)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table


def upsert(dialect: str, table: Table | type[SQLModel], values: dict[str, Any], keys: Sequence[str],
           update: Sequence[str] | None = None) -> Insert:
    """Insert ``values``; on a conflict on ``keys``, update the ``update`` columns (default: all given)."""
    return upsert_rows(dialect, table, update if update is not None else list(values), keys).values(**values)


def upsert_rows(dialect: str, table: Table | type[SQLModel], columns: Sequence[str], keys: Sequence[str]) -> Insert:
    """The statement of :func:`upsert` without values, built once and executed with a list of rows
    (each a dict of ``columns``): a hot writer then builds no statement per row."""
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    cols = [c for c in columns if c not in keys]
    if not cols:
        return ins.on_conflict_do_nothing(index_elements=list(keys))
    return ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})


def insert_ignore(dialect: str, table: Table | type[SQLModel], values: dict[str, Any], keys: Sequence[str]) -> Insert:
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return ins.values(**values).on_conflict_do_nothing(index_elements=list(keys))
