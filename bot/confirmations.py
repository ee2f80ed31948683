"""Server-side confirmations: a single-use random nonce in the database, bound to one request.

The button a platform shows carries only ``cf:<nonce>`` (confirm) or ``cx:<nonce>`` (cancel); the
nonce is looked up here, so a forged or replayed payload finds nothing usable. A row is bound to
the requesting user, chat, command and arguments, expires after ``chat.confirm_ttl_s`` and is
closed by one atomic conditional UPDATE, so two simultaneous presses cannot both win — on SQLite
and PostgreSQL alike, and across replicas sharing the database.

Closing with outcome ``confirmed`` is also the durable record of the intent: the row keeps the
command and its arguments, and ``executed_at`` stays empty until the command has run (see
:mod:`core.trading.confirmed`, which the engine reads on start to complete what a crash interrupted).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select, update

from bot.identity import Actor, ChatRef
from exchanges.clock import Clock
from persistence.db import Database
from persistence.models import ConfirmationRow

log = logging.getLogger("tradectl.bot.confirmations")
Action = Literal["confirm", "cancel"]
Outcome = Literal["confirmed", "cancelled", "expired", "refused"]  # refused: the requester lost the right
_PREFIX: dict[str, Action] = {"cf": "confirm", "cx": "cancel"}
_PAYLOAD_RE = re.compile(r"^(cf|cx):([A-Za-z0-9_-]{16})$")


def new_nonce() -> str:
    """96 random bits, URL-safe: 16 characters, so ``cf:<nonce>`` fits every platform's button id."""
    return secrets.token_urlsafe(12)


def confirm_payload(nonce: str) -> str:
    return f"cf:{nonce}"


def cancel_payload(nonce: str) -> str:
    return f"cx:{nonce}"


def parse_payload(payload: str) -> tuple[Action, str] | None:
    """``(action, nonce)`` for a well-formed payload, else None (treated as forged)."""
    if not isinstance(payload, str) or len(payload) > 64:
        return None
    m = _PAYLOAD_RE.match(payload)
    return (_PREFIX[m.group(1)], m.group(2)) if m else None


@dataclass(frozen=True, slots=True)
class Pending:
    nonce: str
    platform: str
    user_id: str
    chat_id: str
    command: str
    tokens: tuple[str, ...]
    ref_id: str
    approvals_needed: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    outcome: str
    approved_by: str
    message_ref: str = ""  # where the prompt was posted, once the platform said (see ``attach``)

    @property
    def requester(self) -> Actor:
        return Actor(self.platform, self.user_id)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def _pending(row: ConfirmationRow) -> Pending:
    try:
        tokens = tuple(str(t) for t in json.loads(row.args or "[]"))
    except (ValueError, TypeError):
        tokens = ()
    return Pending(row.nonce, row.platform, row.user_id, row.chat_id, row.command, tokens, row.ref_id,
                   row.approvals_needed, row.created_at, row.expires_at, row.used_at, row.outcome, row.approved_by,
                   row.message_ref)


class ConfirmationObserver(Protocol):
    """Told each prompt created (``requested``) and each close that won (``confirmed``, ``cancelled``,
    ``expired``, ``refused``): the metrics, when enabled. A close that lost the race is not an outcome."""

    def confirmation(self, outcome: str) -> None: ...


class ConfirmationStore:
    def __init__(self, db: Database, clock: Clock, observer: ConfirmationObserver | None = None) -> None:
        self.db = db
        self.clock = clock
        self.observer = observer

    def _observe(self, outcome: str) -> None:
        if self.observer is not None:
            try:
                self.observer.confirmation(outcome)
            except Exception:
                log.warning("could not count a confirmation", exc_info=True)

    async def create(self, actor: Actor, chat: ChatRef, command: str, tokens: tuple[str, ...], *, ref_id: str,
                     ttl_s: float, approvals_needed: int = 1) -> Pending:
        now = self.clock.now()
        row = ConfirmationRow(nonce=new_nonce(), platform=actor.platform, user_id=actor.user_id, chat_id=chat.chat_id,
                              command=command, args=json.dumps(list(tokens), ensure_ascii=False), ref_id=ref_id,
                              approvals_needed=approvals_needed, created_at=now,
                              expires_at=now + timedelta(seconds=ttl_s))
        async with self.db.session() as s:
            s.add(row)
        self._observe("requested")
        return _pending(row)

    async def get(self, nonce: str) -> Pending | None:
        async with self.db.session() as s:
            row = await s.get(ConfirmationRow, nonce)
        return _pending(row) if row is not None else None

    async def close(self, nonce: str, outcome: Outcome, approved_by: str = "") -> bool:
        """Use the confirmation up. True only for the one caller that found it open (and, unless the
        outcome is ``expired``, not yet expired): the single-use guarantee lives in this statement."""
        async with self.db.begin() as conn:
            return await self.close_in(conn, nonce, outcome, approved_by)

    async def close_in(self, conn: AsyncConnection, nonce: str, outcome: Outcome, approved_by: str = "") -> bool:
        """:meth:`close` inside the caller's transaction (so what is written with it commits with it)."""
        now = self.clock.now()
        stmt = update(ConfirmationRow).where(col(ConfirmationRow.nonce) == nonce,
                                             col(ConfirmationRow.used_at).is_(None))
        if outcome != "expired":
            stmt = stmt.where(col(ConfirmationRow.expires_at) > now)
        stmt = stmt.values(used_at=now, outcome=outcome, approved_by=approved_by[:500])
        result = await conn.execute(stmt)
        closed = bool(result.rowcount == 1)
        if closed:
            self._observe(outcome)
        return closed

    async def attach(self, nonce: str, message_ref: str) -> None:
        """Remember where the prompt of ``nonce`` was posted, so that it can be edited once it expires
        unpressed (:mod:`bot.expiry`). A prompt sent twice (a retried send) keeps the last place."""
        async with self.db.begin() as conn:
            await conn.execute(update(ConfirmationRow).where(col(ConfirmationRow.nonce) == nonce)
                               .values(message_ref=message_ref[:200]))

    async def expired_unpressed(self, platform: str, limit: int = 50) -> list[Pending]:
        """Open confirmations of ``platform`` past their expiry whose prompt's place is known, oldest
        first. Not closed here: the caller closes each (``close(nonce, "expired")``) and edits only the
        ones it won, so two replicas never edit one prompt twice."""
        now = self.clock.now()
        query = (select(ConfirmationRow)
                 .where(col(ConfirmationRow.platform) == platform, col(ConfirmationRow.used_at).is_(None),
                        col(ConfirmationRow.expires_at) <= now, col(ConfirmationRow.message_ref) != "")
                 .order_by(col(ConfirmationRow.expires_at)).limit(limit))
        async with self.db.session() as s:
            rows = (await s.exec(query)).all()
        return [_pending(row) for row in rows]
