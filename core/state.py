"""The persisted trading state of a deployment group: running | paused | killed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from persistence.db import Database
from persistence.models import TradingStateRow

RUNNING, PAUSED, KILLED = "running", "paused", "killed"


@dataclass(frozen=True, slots=True)
class TradingState:
    state: str
    reason: str
    changed_by: str
    changed_at: datetime | None


class StateStore:
    def __init__(self, db: Database, group: str) -> None:
        self.db = db
        self.group = group

    async def load(self) -> TradingState:
        async with self.db.session() as s:
            row = await s.get(TradingStateRow, self.group)
        if row is None:
            return TradingState(RUNNING, "", "", None)
        return TradingState(row.state, row.reason, row.changed_by, row.changed_at)

    async def save(self, state: str, reason: str, by: str, at: datetime,
                   stage: Callable[[Any], None] | None = None) -> TradingState:
        """Persist the state; ``stage(session)`` may add the matching alerts to the same transaction."""
        async with self.db.session() as s:
            row = await s.get(TradingStateRow, self.group)
            if row is None:
                row = TradingStateRow(group_name=self.group, state=state)
            row.state, row.reason, row.changed_by, row.changed_at = state, reason[:500], by[:200], at
            s.add(row)
            if stage is not None:
                stage(s)
        return TradingState(state, reason, by, at)
