"""engine crash safety: no schema change (order reasons use existing columns; the paper venue's
per-candle cursors are rows of runtime_values)

Revision ID: 0005
Revises: 0004
"""
from alembic import op  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
