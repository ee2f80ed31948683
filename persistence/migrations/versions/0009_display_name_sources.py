"""display names say where they came from, so a Slack handle never replaces a looked-up name

``source`` is ``profile`` (the name the platform shows for the user: sent with every Telegram and
Discord update, looked up with Slack's ``users.info``) or ``handle`` (the legacy handle a Slack
command or button press carries, stored while no profile name is known). Which one a Slack row
from before this revision holds cannot be told, so Slack rows start as ``handle``: the next command
of each such user asks ``users.info`` once (as for a name over a day old) and stores what it
answers as ``profile``; until then the row is shown as it is. Telegram and Discord rows are
``profile``.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("display_names") as batch:
        batch.add_column(sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                   server_default="profile"))
    op.execute("UPDATE display_names SET source = 'handle' WHERE platform = 'slack'")


def downgrade() -> None:
    with op.batch_alter_table("display_names") as batch:
        batch.drop_column("source")
