"""api_nonces: the high-water mark of venue API nonces per key (Kraken), shared by restarts and replicas

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import persistence.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_nonces",
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("venue", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("high_water", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", persistence.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_nonces")
