"""audit log: refused floods in aggregate (an attempts count per row), and an index for chat-scoped views

A stranger's or a rate-limited sender's flood is audited as one row per sender, chat and minute with
the number of attempts, instead of one row per message. Rows written before this revision stand for
one attempt each. The index on (platform, chat_id, id) serves ``/audit`` and ``/roles`` in a group,
which read only that chat's rows, newest first.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
    op.create_index("ix_audit_log_chat", "audit_log", ["platform", "chat_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_chat", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("attempts")
