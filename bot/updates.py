"""Processed platform updates: at-least-once delivery from the platforms, at-most-once execution here.

Telegram redelivers an update until a later ``getUpdates`` confirms it, and a failover can replay
a queue; Slack and Discord retry too. The dispatcher records each update id before acting on it,
in one conditional insert, so a redelivered update never executes twice. Marking *before* acting
means a crash mid-command loses that command instead of repeating it, which is the safe side for
``/close`` and ``/kill``. Commands without side effects (reads, refusals) record the update in the
same transaction as their audit row instead, after running: repeating a read is harmless and it
saves a round trip on the hot path. The leader's epoch is stored with the row for fencing checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from exchanges.clock import Clock
from persistence.db import Database
from persistence.models import ProcessedUpdateRow
from persistence.upsert import dialect_insert

MAX_ID = 64
# SQLModel's types omit the table SQLAlchemy attaches
_TABLE: Table = ProcessedUpdateRow.__table__  # type: ignore[attr-defined]


def update_key(update_id: str) -> str:
    """Ids longer than the column are hashed (deterministically), never truncated into collisions."""
    if len(update_id) <= MAX_ID:
        return update_id
    return "h:" + hashlib.sha256(update_id.encode("utf-8", "surrogatepass")).hexdigest()[: MAX_ID - 2]


@dataclass(frozen=True, slots=True)
class UpdateRef:
    """One platform delivery: the platform's own id for it, and the leader epoch that received it."""

    platform: str
    update_id: str
    epoch: int | None = None


class ProcessedUpdates:
    def __init__(self, db: Database, clock: Clock, instance_id: str = "") -> None:
        self.db = db
        self.clock = clock
        self.instance_id = instance_id[:200]
        # Built once with parameters bound at execution, so SQLAlchemy compiles it once (hot path).
        insert = dialect_insert(db.dialect, _TABLE)
        self._insert = insert.on_conflict_do_nothing(index_elements=["platform", "update_id"])

    async def mark(self, conn: AsyncConnection, ref: UpdateRef) -> bool:
        """Record the update inside the caller's transaction; True when it was not seen before.

        Used so that the record and the audit row of a side-effect-free command commit together."""
        values = {"platform": ref.platform[:16], "update_id": update_key(ref.update_id), "epoch": ref.epoch or 0,
                  "instance_id": self.instance_id, "processed_at": self.clock.now()}
        result = await conn.execute(self._insert, values)
        return bool(result.rowcount == 1)

    async def first_time(self, ref: UpdateRef) -> bool:
        """Record the update in its own transaction, before acting on it."""
        async with self.db.begin() as conn:
            return await self.mark(conn, ref)
