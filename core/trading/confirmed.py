"""Confirmed intents a crash interrupted: the journal the engine reads on start.

Pressing Confirm closes the confirmation with one atomic conditional UPDATE (outcome ``confirmed``);
that row is the durable record of the intent. Once the command has run, whatever its result, the
press path sets ``executed_at``. A row confirmed but never marked executed is therefore an intent the
process died in the middle of, and the engine completes it on start before anything else runs — so a
confirmed ``/kill`` always ends killed, even if the process dies 10 ms after the press.

This module works on the table directly because ``core`` may not import ``bot`` (which owns the
rest of the confirmation rules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.sql import Update
from sqlmodel import col, select, update

from persistence.db import Database
from persistence.models import ConfirmationRow

_RESULT_MAX = 200


@dataclass(frozen=True)
class ConfirmedRequest:
    """One confirmed command whose execution was not recorded as finished."""

    nonce: str
    command: str
    tokens: tuple[str, ...]
    requested_by: str  # ``platform:user`` of the requester (the one the command runs as)
    chat_id: str
    confirmed_at: datetime


def _tokens(raw: str) -> tuple[str, ...]:
    try:
        loaded = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(t) for t in loaded) if isinstance(loaded, list) else ()


async def unfinished(db: Database, commands: tuple[str, ...]) -> list[ConfirmedRequest]:
    """Confirmed, not executed requests for ``commands``, oldest first."""
    if not commands:
        return []
    stmt = (select(ConfirmationRow)
            .where(col(ConfirmationRow.outcome) == "confirmed", col(ConfirmationRow.executed_at).is_(None),
                   col(ConfirmationRow.command).in_(commands))
            .order_by(col(ConfirmationRow.used_at), col(ConfirmationRow.nonce)))
    async with db.read() as s:
        rows = (await s.exec(stmt)).all()
    return [ConfirmedRequest(nonce=r.nonce, command=r.command, tokens=_tokens(r.args),
                             requested_by=f"{r.platform}:{r.user_id}", chat_id=r.chat_id,
                             confirmed_at=r.used_at or r.created_at) for r in rows]


def executed(nonce: str, result: str) -> Update:
    """The statement recording that the confirmed command ran (``result`` is a short word or line for the
    record). Only the first mark counts, so a late duplicate never rewrites what happened."""
    return (update(ConfirmationRow)
            .where(col(ConfirmationRow.nonce) == nonce, col(ConfirmationRow.executed_at).is_(None))
            .values(executed_at=datetime.now(UTC), result=result[:_RESULT_MAX]))


async def mark_executed(db: Database, nonce: str, result: str) -> None:
    """Record that the confirmed command ran (:func:`executed`), in a transaction of its own."""
    async with db.session() as s:
        await s.exec(executed(nonce, result))
