"""The persisted trading state of a deployment group (running | paused | killed), and the one place
that changes it.

:class:`TradingStates` holds the current state in memory and owns every transition: intents
(pause, resume, re-arm), the breakers' auto-pause, a database outage and the kill switch all go
through :meth:`TradingStates.change`, which stores the state together with its
:class:`~core.trading.events.StateChanged` alert in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading.events import Event, EventBus, StateChanged
from core.trading.values import TradingStatus
from persistence.db import Database
from persistence.models import TradingStateRow

__all__ = ["KILLED", "PAUSED", "RUNNING", "StateStore", "TradingState", "TradingStates", "TradingStatus"]
log = logging.getLogger("tradectl.engine")

RUNNING, PAUSED, KILLED = TradingStatus.RUNNING, TradingStatus.PAUSED, TradingStatus.KILLED


@dataclass(frozen=True, slots=True)
class TradingState:
    state: TradingStatus
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
        return TradingState(TradingStatus(row.state), row.reason, row.changed_by, row.changed_at)

    async def save(self, state: TradingStatus | str, reason: str, by: str, at: datetime,
                   stage: Callable[[AsyncSession], None] | None = None) -> TradingState:
        """Persist the state; ``stage(session)`` may add the matching alerts to the same transaction."""
        status = TradingStatus(state)
        async with self.db.session() as s:
            row = await s.get(TradingStateRow, self.group)
            if row is None:
                row = TradingStateRow(group_name=self.group, state=status)
            row.state, row.reason, row.changed_by, row.changed_at = status, reason[:500], by[:200], at
            s.add(row)
            if stage is not None:
                stage(s)
        return TradingState(status, reason, by, at)


class TradingStates:
    """The current trading state and its transitions (see the module docstring)."""

    def __init__(self, store: StateStore, events: EventBus) -> None:
        self.store = store
        self.events = events
        self.current = TradingState(RUNNING, "", "", None)

    @property
    def state(self) -> TradingStatus:
        return self.current.state

    async def load(self) -> TradingState:
        self.current = await self.store.load()
        return self.current

    def hold(self, state: TradingStatus, reason: str, by: str, at: datetime) -> None:
        """Change the state in memory only, at once (no ``await``): a database outage pauses this way,
        and the kill before it stores anything. :meth:`change` stores it afterwards."""
        self.current = TradingState(state, reason, by, at)

    async def change(self, state: TradingStatus, reason: str, by: str, *, at: datetime | None = None,
                     previous: TradingStatus | None = None, extra: tuple[Event, ...] = (),
                     attempts: int = 1) -> TradingState:
        """Store ``state`` with its :class:`StateChanged` alert (and ``extra`` events) in one
        transaction, then make it current. ``previous`` is the state the alert reports as left (by
        default the current one). With ``attempts`` > 1 a failed write is retried every 0.1 s and,
        if every attempt fails, the state is kept in memory only (the kill switch: it must not stop
        at a database error). Operator-facing changes carry wall-clock time, even during a replay."""
        at = at or datetime.now(UTC)
        changed = StateChanged(state=state, previous=previous or self.current.state, by=by, reason=reason)

        def stage(session: AsyncSession) -> None:
            for ev in (changed, *extra):
                self.events.stage(session, ev)

        for attempt in range(1, attempts + 1):
            try:
                self.current = await self.store.save(state, reason, by, at, stage=stage)
                break
            except Exception:
                if attempt == attempts == 1:
                    raise
                log.exception("could not persist the %s state (attempt %d)", state, attempt)
                await asyncio.sleep(0.1)
        return self.current
