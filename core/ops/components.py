"""Component health: what each long-lived part of an instance is doing, readable in chat and by the probe.

A component that fails in the background (a chat adapter that cannot connect, a sender whose
platform stopped answering) keeps retrying on its own; without a place to say so it would fail
silently while ``tradectl health`` kept reporting a fresh heartbeat. Each component reports its
state to one :class:`ComponentHealth` (built in the wiring and passed in): ``starting``, ``up``,
``idle`` (connected, nothing to do on this replica) or ``down`` (failing, retrying), with a reason.

``/health`` reads the registry in memory. :class:`ComponentPublisher` writes the components that are
down to the database (a ``runtime_values`` row per instance, only when something changed), so the
credential-less probe can read them next to the instance's heartbeat: a component that is down
makes ``tradectl health`` report the instance degraded, with the reason, and exit non-zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from core.ops.probe import KEY_PREFIX, ComponentState, ComponentStatus, encode, now_utc, record_key
from core.ops.probe import read_problems as read_problems  # re-exported: the reader of what the publisher writes
from core.runtime.lifecycle import Supervisor, TaskFailed
from persistence.db import Database
from persistence.models import HeartbeatRow, RuntimeValue
from persistence.upsert import table_of, upsert

if TYPE_CHECKING:
    from core.trading.views import HealthView  # the trading core is not loaded by the health probe

log = logging.getLogger("tradectl.components")
MAX_REASON = 300


class ComponentHealth:
    """The registry. Reporting the same state again only updates the reason; a change is logged."""

    def __init__(self, clock: Callable[[], datetime] = now_utc) -> None:
        self._clock = clock
        self._status: dict[str, ComponentStatus] = {}
        self.changed = asyncio.Event()
        self.version = 0

    def report(self, name: str, state: ComponentState, reason: str = "") -> None:
        reason = " ".join(reason.split())[:MAX_REASON]
        old = self._status.get(name)
        if old is not None and old.state == state and old.reason == reason:
            return
        since = old.since if old is not None and old.state == state else self._clock()
        self._status[name] = ComponentStatus(name, state, reason, since)
        if old is None or old.state != state:
            if state == "down":
                log.warning("component %s is down: %s", name, reason or "no reason given")
            elif old is not None and old.state == "down":
                log.info("component %s is %s again after %.0fs%s", name, state,
                         (self._clock() - old.since).total_seconds(), f" ({reason})" if reason else "")
        self.version += 1
        self.changed.set()

    def up(self, name: str, reason: str = "") -> None:
        self.report(name, "up", reason)

    def down(self, name: str, reason: str) -> None:
        self.report(name, "down", reason)

    def task_failed(self, failure: TaskFailed) -> None:
        """An ``on_failure`` for tasks whose crash must not stop the service (an alert destination's
        delivery): the task shows as a component down, under its name, until the process restarts."""
        self.down(failure.task_name, f"stopped after an error: {type(failure.original).__name__}: {failure.original}")

    def remove(self, name: str) -> None:
        if self._status.pop(name, None) is not None:
            self.version += 1
            self.changed.set()

    def get(self, name: str) -> ComponentStatus | None:
        return self._status.get(name)

    def statuses(self) -> tuple[ComponentStatus, ...]:
        return tuple(sorted(self._status.values(), key=lambda s: s.name))

    def problems(self) -> tuple[ComponentStatus, ...]:
        return tuple(s for s in self.statuses() if not s.healthy)


_TABLE = table_of(RuntimeValue)


class ComponentPublisher:
    """Writes this instance's components that are down to the database whenever that set changes.

    At most one write per ``min_interval_s`` (a flapping connection costs nothing); a failed write
    (the database is down too) is retried. Nothing is written while everything is healthy, except
    removing the row when the last problem clears.
    """

    name = "component-health"

    def __init__(self, db: Database, health: ComponentHealth, *, instance_id: str, min_interval_s: float = 1.0,
                 on_failure: Callable[[TaskFailed], None] | None = None) -> None:
        self._db = db
        self._health = health
        self._key = record_key(instance_id)
        self._interval = min_interval_s
        self._sup = Supervisor("component-health", on_failure=on_failure)
        self._written: str | None = None

    async def start(self) -> None:
        try:
            await self._prune()
        except Exception:
            log.warning("could not prune component records of gone instances", exc_info=True)
        self._sup.spawn("component-health", self._loop())

    async def stop(self) -> None:
        await self._sup.stop()
        try:
            async with self._db.begin() as conn:
                await conn.execute(delete(_TABLE).where(_TABLE.c.key == self._key))
        except Exception:
            log.warning("could not remove this instance's component record", exc_info=True)

    async def publish(self) -> None:
        """Write the current problems now (or delete the record when there are none)."""
        problems = self._health.problems()
        value = encode(problems) if problems else ""
        if value == self._written:
            return
        now = await self._db.now() if value else None
        async with self._db.begin() as conn:
            if value:
                values = {"key": self._key, "value": value, "updated_at": now}
                await conn.execute(upsert(self._db.dialect, _TABLE, values, ["key"]))
            else:
                await conn.execute(delete(_TABLE).where(_TABLE.c.key == self._key))
        self._written = value

    async def _loop(self) -> None:
        while True:
            self._health.changed.clear()
            try:
                await self.publish()
            except Exception:
                log.warning("could not publish component health", exc_info=True)
                await asyncio.sleep(self._interval)
                continue
            await self._health.changed.wait()
            await asyncio.sleep(self._interval)

    async def _prune(self) -> None:
        """Forget the records of instances whose heartbeat is gone (retention deletes old heartbeats)."""
        heartbeats = table_of(HeartbeatRow)
        async with self._db.begin() as conn:
            keys = {r[0] for r in (await conn.execute(select(_TABLE.c.key).where(_TABLE.c.key.like(KEY_PREFIX + "%"))))}
            live = {record_key(r[0]) for r in (await conn.execute(select(heartbeats.c.instance_id)))}
            gone = sorted(keys - live - {self._key})
            if gone:
                await conn.execute(delete(_TABLE).where(_TABLE.c.key.in_(gone)))


def with_components(view: HealthView, health: ComponentHealth | None) -> HealthView:
    """``view`` (the engine's, or a standby's) with every component's state added; any component
    down makes it not OK (``/health`` then says DEGRADED)."""
    if health is None:
        return view
    statuses = health.statuses()
    components = {**view.components, **{s.name: s.state + (f": {s.reason}" if s.reason else "") for s in statuses}}
    ok = view.ok and all(s.healthy for s in statuses)
    return dataclasses.replace(view, ok=ok, components=components)
