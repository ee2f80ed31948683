"""One input on its way through the middleware (:class:`Attempt`), and how its outcome is recorded.

Every decision the dispatcher or a confirmation press makes ends here: :meth:`Outcomes.refuse` writes
the audit row (recording the platform update id in the same transaction when it is still unrecorded)
and hands back the reply — or None when the update turns out to be a redelivery.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from bot.audit import AuditLog, Decision
from bot.identity import Actor, ChatRef
from bot.reply import Reply
from bot.updates import ProcessedUpdates, UpdateRef

log = logging.getLogger("tradectl.bot.dispatcher")

# Decisions whose reply only the asker needs to see (a mutating command's failure is not one: it reports
# what it did, and runs through the audit row written before it)
_PRIVATE = frozenset({"denied", "invalid", "stale", "unknown", "rate_limited", "expired", "failed", "duplicate"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One input on its way through the middleware. ``update`` is set until the update id is recorded."""

    actor: Actor
    chat: ChatRef
    command: str
    args: str
    ref: str
    update: UpdateRef | None = None


def settle(reply: Reply | None) -> Reply | None:
    """Mark the answer to a press after which its prompt is over: the adapter removes the buttons."""
    return dataclasses.replace(reply, settled=True) if reply is not None else None


class Outcomes:
    """Writes each attempt's audit row, de-duplicating redelivered updates on the way."""

    def __init__(self, audit: AuditLog, updates: ProcessedUpdates) -> None:
        self.audit = audit
        self.updates = updates

    def row(self, attempt: Attempt, decision: Decision, result: str, actor: Actor | None = None) -> dict[str, Any]:
        who = actor or attempt.actor
        return self.audit.entry(platform=who.platform, user_id=who.user_id, chat_id=attempt.chat.chat_id,
                                command=attempt.command, args=attempt.args, decision=decision, result=result,
                                ref_id=attempt.ref)

    async def refuse(self, attempt: Attempt, decision: Decision, result: str, reply: Reply | None,
                     actor: Actor | None = None) -> Reply | None:
        """Audit the outcome, then hand back ``reply`` — or None if the update turns out to be a redelivery.
        A refusal, or a failure of a command that changes nothing, is for the asker only (``private``)."""
        if reply is not None and decision in _PRIVATE:
            reply = dataclasses.replace(reply, private=True)
        return reply if await self.record(attempt, decision, result, actor) else None

    async def record(self, attempt: Attempt, decision: Decision, result: str, actor: Actor | None = None) -> bool:
        """Write the audit row; if the update id is still unrecorded, record it in the same transaction.
        False when the update had been processed before (the row then says ``duplicate``)."""
        row = self.row(attempt, decision, result, actor)
        if attempt.update is None:
            await self.audit.write(row)
            return True
        try:
            async with self.audit.db.begin() as conn:
                fresh = await self.updates.mark(conn, attempt.update)
                if not fresh:
                    self.audit.set_outcome(row, "duplicate", f"update already processed; would be {decision}")
                await self.audit.add(conn, row)
            return fresh
        except Exception:
            log.exception("audit write failed: %s /%s -> %s", attempt.ref, attempt.command, decision)
            return True
