"""display names: the latest name seen per platform user, shown beside ids in /roles, /audit and alerts

Names are for reading only; the stable platform id stays the identity. The table starts empty and
fills as people write to the bot.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import persistence.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "display_names",
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("seen_at", persistence.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("display_names")
