"""confirmations remember where their prompt was posted, so an expired prompt nobody pressed is edited

``message_ref`` names the platform's message ("<chat id>:<message id>" on Telegram, "<channel>:<ts>"
on Slack, "<channel>:<message id>" on Discord). Rows from before this revision have none: their
prompts keep their buttons, and a press on one still says it expired.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.add_column(sa.Column("message_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_column("message_ref")
