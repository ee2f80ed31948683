"""confirmations record when a confirmed command finished, so a crash cannot lose a confirmed intent

A confirmation closed with outcome ``confirmed`` but no ``executed_at`` is an intent whose command a
crash interrupted; the engine completes it on start. Rows confirmed before this revision are marked
executed (their command ran, or was lost before this record existed), so an upgrade never replays them.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import persistence.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.add_column(sa.Column("executed_at", persistence.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False,
                                   server_default=""))
    op.execute("UPDATE confirmations SET executed_at = used_at WHERE outcome = 'confirmed'")


def downgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_column("result")
        batch.drop_column("executed_at")
