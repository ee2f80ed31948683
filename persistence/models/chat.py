"""Chat tables: role grants, pending confirmations, audit log, processed platform updates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from persistence.models._common import ts


class RoleGrantRow(SQLModel, table=True):
    __tablename__ = "role_grants"
    platform: str = Field(primary_key=True, max_length=16)
    user_id: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    granted_by: str = Field(default="", max_length=200)
    granted_at: datetime = ts()


class ConfirmationRow(SQLModel, table=True):
    """A pending confirmation: single use, bound to user, chat, command and arguments.

    Closing it with outcome ``confirmed`` is the durable record of the intent; ``executed_at`` is set
    once the command has run (whatever its result). A row confirmed but not executed is an intent a
    crash interrupted, which the engine completes on start (:mod:`core.trading.confirmed`).
    """

    __tablename__ = "confirmations"
    nonce: str = Field(primary_key=True, max_length=64)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=64)
    command: str = Field(max_length=32)
    args: str = Field(default="", max_length=2000)
    ref_id: str = Field(default="", max_length=32)
    approvals_needed: int = 1
    approved_by: str = Field(default="", max_length=500)
    created_at: datetime = ts()
    expires_at: datetime = ts(index=True)
    used_at: datetime | None = ts(nullable=True, default_now=False)
    outcome: str = Field(default="", max_length=16)
    executed_at: datetime | None = ts(nullable=True, default_now=False)
    result: str = Field(default="", max_length=200)
    # where the prompt was posted ("<chat id>:<message id>" on Telegram, "<channel>:<ts>" on Slack,
    # "<channel>:<message id>" on Discord), so a prompt nobody pressed loses its buttons once it expires
    message_ref: str = Field(default="", max_length=200)


class AuditRow(SQLModel, table=True):
    """One attempt, or with ``attempts`` > 1 a refused flood: one row per sender, chat and minute.

    Indexed by chat so that the chat-scoped ``/audit`` of a group reads only that chat's rows."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_chat", "platform", "chat_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = ts(index=True)
    ref_id: str = Field(max_length=32, index=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=64)
    command: str = Field(max_length=64)
    args: str = Field(default="", max_length=2000)
    decision: str = Field(max_length=16)
    result: str = Field(default="", max_length=2000)
    attempts: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class ProcessedUpdateRow(SQLModel, table=True):
    """Platform updates already executed: at-least-once delivery, exactly-once effect."""

    __tablename__ = "processed_updates"
    platform: str = Field(primary_key=True, max_length=16)
    update_id: str = Field(primary_key=True, max_length=64)
    epoch: int = 0
    instance_id: str = Field(default="", max_length=200)
    processed_at: datetime = ts(index=True)


class DisplayNameRow(SQLModel, table=True):
    """The latest display name seen for a platform user: shown beside the id in /roles, /audit and
    alerts. Never used to decide anything (the stable id is the identity); a name a user changes is
    simply overwritten the next time they write.

    ``source`` says where the name came from: ``profile`` (the name the platform shows for the user:
    sent with every Telegram and Discord update, looked up with Slack's ``users.info``) or ``handle``
    (the legacy handle a Slack command or button press carries, a stand-in while no profile name is
    known). A handle never replaces a profile name less than a day old; a profile name always replaces
    a handle (``bot.identity.DisplayNames``)."""

    __tablename__ = "display_names"
    platform: str = Field(primary_key=True, max_length=16)
    user_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=100)
    source: str = Field(default="profile", max_length=16)
    seen_at: datetime = ts()
