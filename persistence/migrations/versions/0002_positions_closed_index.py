"""index positions by status and closing time (PnL periods, /status today's PnL)

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_positions_status_closed_at", "positions", ["status", "closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_positions_status_closed_at", table_name="positions")
