"""The audit log: every attempt, allowed or not, written before the reply.

A row records who (platform and stable user id), where (chat), what (command and its arguments),
the decision, the result and a short reference id that the chat shows for failures so an operator
can find the log lines. Arguments are clipped and anything that looks like a credential is masked
before it is stored; the audit log is read from chat (/audit), so it must never hold a secret.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, bindparam
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.format import clip
from exchanges.clock import Clock
from persistence.db import Database
from persistence.models import AuditRow

log = logging.getLogger("tradectl.bot.audit")

Decision = Literal["allowed", "denied", "confirmed", "cancelled", "expired", "failed", "stale",
                   "rate_limited", "unknown", "invalid", "duplicate"]
_TABLE: Table = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel's types omit the table SQLAlchemy attaches
# One statement object, parameters passed at execution: compiled once, cached by SQLAlchemy.
_INSERT = _TABLE.insert().returning(_TABLE.c.id)
_SET_ATTEMPTS = _TABLE.update().where(_TABLE.c.id == bindparam("row_id")).values(attempts=bindparam("n"))
MAX_ARGS = 300
MAX_RESULT = 500
# Long unbroken runs of token characters (bot tokens, API keys, JWTs) and key=value credentials.
_TOKENISH = re.compile(r"[A-Za-z0-9_\-+/=:.]{32,}")
_KEYVALUE = re.compile(r"(?i)\b(token|secret|password|passwd|api[_-]?key|key)\s*[=:]\s*\S+")


def new_ref_id() -> str:
    """Eight characters, unambiguous to read aloud and to grep for."""
    return secrets.token_hex(4)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def scrub(text: str) -> str:
    """Mask credential-looking substrings; also strips control characters that would garble a table."""
    text = _printable(text)
    text = _KEYVALUE.sub(lambda m: f"{m.group(1)}=[redacted]", text)
    return _TOKENISH.sub("[redacted]", text)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    ts: datetime
    ref_id: str
    platform: str
    user_id: str
    chat_id: str
    command: str
    args: str
    decision: str
    result: str
    attempts: int = 1  # more than one: a refused flood, counted per sender, chat and minute


class AuditLog:
    """Writes and reads ``audit_log``. ``redact`` is the process-wide secret redactor, when there is one."""

    def __init__(self, db: Database, clock: Clock, redact: Callable[[str], str] | None = None) -> None:
        self.db = db
        self.clock = clock
        self._redact = redact

    def _clean(self, text: str, limit: int) -> str:
        text = scrub(text)
        if self._redact is not None:
            text = self._redact(text)
        return clip(text, limit)

    def entry(
        self, *, platform: str, user_id: str, chat_id: str, command: str, args: str, decision: Decision,
        result: str, ref_id: str,
    ) -> dict[str, Any]:
        """The column values of a clean row (ids printable, arguments clipped and scrubbed), not yet written."""
        return {"ts": self.clock.now(), "ref_id": ref_id[:32], "platform": _printable(str(platform))[:16],
                "user_id": _printable(str(user_id))[:64], "chat_id": _printable(str(chat_id))[:64],
                "command": clip(scrub(command), 64), "args": self._clean(args, MAX_ARGS), "decision": decision,
                "result": self._clean(result, MAX_RESULT), "attempts": 1}

    def set_outcome(self, values: dict[str, Any], decision: Decision, result: str) -> None:
        values["decision"], values["result"] = decision, self._clean(result, MAX_RESULT)

    async def record(
        self, *, platform: str, user_id: str, chat_id: str, command: str, args: str, decision: Decision,
        result: str, ref_id: str,
    ) -> int | None:
        """Insert one row and return its id. A failing audit write is logged, never raised: it must not
        turn a kill into an error or hide a denial from the user; the log line keeps the record."""
        return await self.write(self.entry(platform=platform, user_id=user_id, chat_id=chat_id, command=command,
                                           args=args, decision=decision, result=result, ref_id=ref_id))

    async def add(self, conn: AsyncConnection, values: dict[str, Any]) -> int:
        """Insert inside the caller's transaction (a plain Core insert: this is on every command's path)."""
        return int((await conn.execute(_INSERT, values)).scalar_one())

    async def write(self, values: dict[str, Any]) -> int | None:
        try:
            async with self.db.begin() as conn:
                return await self.add(conn, values)
        except Exception:
            log.exception("audit write failed: %s %s:%s /%s -> %s", values["ref_id"], values["platform"],
                          values["user_id"], values["command"], values["decision"])
            return None

    async def finish(self, row_id: int | None, decision: Decision, result: str) -> None:
        """Complete a row written before a state-changing command ran (so a crash mid-way leaves a trace)."""
        if row_id is None:
            return
        try:
            async with self.db.begin() as conn:
                await conn.execute(_TABLE.update().where(_TABLE.c.id == row_id).values(
                    decision=decision, result=self._clean(result, MAX_RESULT)))
        except Exception:
            log.exception("audit update failed for row %s -> %s", row_id, decision)

    async def set_attempts(self, counts: list[tuple[int, int]]) -> None:
        """Store the final attempt counts of aggregated rows (``(row id, attempts)``), in one transaction."""
        try:
            async with self.db.begin() as conn:
                await conn.execute(_SET_ATTEMPTS, [{"row_id": row_id, "n": n} for row_id, n in counts])
        except Exception:
            log.exception("audit attempt counts not stored: %s", counts[:20])

    async def recent(self, count: int, *, platform: str | None = None, user_id: str | None = None,
                     ref_id: str | None = None, chat_id: str | None = None) -> list[AuditRecord]:
        """Newest first. ``chat_id`` (with ``platform``) keeps one chat's rows: what a group may see."""
        stmt = select(AuditRow)
        if platform is not None:
            stmt = stmt.where(col(AuditRow.platform) == platform)
        if chat_id is not None:
            stmt = stmt.where(col(AuditRow.chat_id) == chat_id)
        if user_id is not None:
            stmt = stmt.where(col(AuditRow.user_id) == user_id)
        if ref_id is not None:
            stmt = stmt.where(col(AuditRow.ref_id) == ref_id)
        stmt = stmt.order_by(col(AuditRow.id).desc()).limit(count)
        async with self.db.session() as s:
            rows = (await s.exec(stmt)).all()
        return [AuditRecord(r.id or 0, r.ts, r.ref_id, r.platform, r.user_id, r.chat_id, r.command, r.args,
                            r.decision, r.result, r.attempts) for r in rows]

    async def users_in_chat(self, platform: str, chat_id: str, limit: int = 1000) -> set[str]:
        """User ids of ``platform`` that ever sent a command in this chat (for a chat-scoped /roles)."""
        stmt = (select(AuditRow.user_id).where(col(AuditRow.platform) == platform, col(AuditRow.chat_id) == chat_id)
                .distinct().limit(limit))
        async with self.db.session() as s:
            return set((await s.exec(stmt)).all())
