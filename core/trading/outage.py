"""A database outage is an event of the engine, not an error per candle.

Every effect of a candle is written to the database (orders before they are sent, fills, the
equity snapshot and the replay cursor), so while the database is unreachable a candle cannot be
processed. The engine then stops consuming candles and retries the one in hand until the database
answers (no candle is skipped; each step of a candle is idempotent, so a retried candle counts
once), pauses entries at once in memory, and logs a line at once. When the database is back it
stores the pause and raises one :class:`DatabaseOutage` alert, in one transaction.

Not done: a leader that cannot renew its lease for ``leader.step_down_s`` stops its engine; the
pause and the alert of that outage are then lost with it, and the next term starts from the
stored state (its recovery replays from the last committed candle, so still nothing is skipped).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from core.trading.events import AutoPaused, Event, EventBus
from core.trading.state import PAUSED, RUNNING, TradingStates, TradingStatus
from exchanges.retry import Backoff
from persistence.db import Database

log = logging.getLogger("tradectl.engine")
_RETRY = Backoff(initial_s=0.25, max_s=5.0, jitter=0.0)  # a candle retried while the database is away


def _connection_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [OSError, sa_exc.OperationalError, sa_exc.InterfaceError,
                                        sa_exc.DisconnectionError, sa_exc.TimeoutError]
    # asyncpg's own errors only once PostgreSQL's driver is loaded (by then it is, if it can raise them): on
    # SQLite the driver is never imported, which spares its memory
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is not None:
        x = asyncpg.exceptions
        kinds += [x.PostgresConnectionError, x.OperatorInterventionError, x.InvalidAuthorizationSpecificationError,
                  x.InterfaceError, x.UndefinedTableError, x.ReadOnlySQLTransactionError, x.InsufficientPrivilegeError]
    return tuple(kinds)

# What every candle writes (its equity mark and the replay cursor) and where the pause is stored.
_PROBED = ("equity_snapshots", "runtime_values", "trading_state")


def is_database_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database could not be reached, written or
    used at all (connection refused or lost, file unwritable or locked, tables gone, a read-only
    standby), as opposed to a refused value (which retrying the same candle would not fix)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    connection_errors = _connection_errors()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (sa_exc.IntegrityError, sa_exc.DataError)):
            return False
        if isinstance(cur, connection_errors):
            return True
        if isinstance(cur, sa_exc.DBAPIError) and cur.connection_invalidated:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


@dataclass(frozen=True, kw_only=True)
class DatabaseOutage(Event):
    kind: ClassVar[str] = "database_outage"
    severity: ClassVar[str] = "error"
    since: datetime
    until: datetime
    retries: int
    error: str
    paused: bool

    def summary(self) -> str:
        took = (self.until - self.since).total_seconds()
        then = "entries were paused (/resume when satisfied)" if self.paused else "the trading state was kept"
        return (f"database unreachable for {took:.0f}s ({self.error}); no candle was skipped: processing "
                f"waited and retried {self.retries} time(s), then went on from the last stored candle; {then}")


class DatabaseWatch:
    """Tracks one outage at a time for an engine: when it began, what failed, whether it paused."""

    def __init__(self, db: Database, states: TradingStates, events: EventBus, counters: Counter[str]) -> None:
        self.db, self.states, self.events, self.counters = db, states, events, counters
        self.since: datetime | None = None
        self._since_mono = 0.0
        self.retries = 0
        self.error = ""
        self.paused = False
        self.previous: TradingStatus = RUNNING
        # The feed, the protection loop and recovery each see the database back; one of them stores it.
        self._recovering = asyncio.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def backoff_s(self) -> float:
        """Wait before the next retry: 0.25 s doubling with each retry to 5 s, without jitter."""
        return _RETRY.delay(self.retries)

    def failed(self, exc: BaseException, where: str) -> None:
        """Called on every failure that :func:`is_database_outage`; the first one logs and pauses."""
        self.counters["database_errors"] += 1
        if self.since is not None:
            self.retries += 1
            if self.retries % 20 == 0:
                log.error("database still unreachable after %.0fs (%d retries)",
                          time.monotonic() - self._since_mono, self.retries)
            return
        self.since, self._since_mono, self.retries = datetime.now(UTC), time.monotonic(), 0
        self.error = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        self.previous = self.states.state
        self.paused = self.states.state == RUNNING
        if self.paused:  # in memory now; stored with the alert once the database answers
            self.states.hold(PAUSED, "database unreachable", "risk", self.since)
        self.counters["database_outages"] += 1
        log.error("database unreachable in %s: %s -- candle processing waits and retries, entries are %s",
                  where, self.error, "paused" if self.paused else self.states.state)

    async def probe(self) -> bool:
        """Whether the tables a candle writes answer again. Not a bare ``SELECT 1``: a database that
        accepts connections but has lost (or withholds) the engine's tables is still down for it."""
        try:
            async with self.db.engine.connect() as conn:
                for table in _PROBED:
                    await conn.execute(text(f"SELECT 1 FROM {table} WHERE 1 = 0"))
        except Exception:  # noqa: BLE001 - still down
            return False
        return True

    async def recovered(self) -> None:
        """Store the pause and the one alert of this outage (raises if the database fails again).
        Callers may race (the feed and the protection loop both notice); the second finds it stored."""
        async with self._recovering:
            await self._store_recovery()

    async def _store_recovery(self) -> None:
        if self.since is None:
            return
        event = DatabaseOutage(since=self.since, until=datetime.now(UTC), retries=self.retries, error=self.error,
                               paused=self.paused and self.states.state == PAUSED)
        if event.paused:
            reason = self.states.current.reason
            await self.states.change(PAUSED, reason, "risk", at=self.since, previous=self.previous,
                                     extra=(AutoPaused(reason=reason), event))
        else:
            await self.events.record(self.db, event)
        log.warning("database reachable again after %.0fs", time.monotonic() - self._since_mono)
        self.since, self.retries, self.paused = None, 0, False
