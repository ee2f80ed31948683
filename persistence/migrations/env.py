"""Alembic environment: always run programmatically from :mod:`persistence.migrate` on a
connection it hands over (so the same code serves PostgreSQL, SQLite and per-test schemas)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import persistence.models  # noqa: F401  - registers every table on SQLModel.metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tradectl db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
