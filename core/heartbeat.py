"""Heartbeats: each running instance upserts its row; ``tradectl health`` reads them.

The health probe needs no credentials: it asks the database whether an instance of this
deployment group *on this host* (a container's hostname is its own) was seen recently.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from core.components import describe, read_problems
from core.lifecycle import Supervisor
from persistence.db import Database
from persistence.models import HeartbeatRow
from persistence.upsert import upsert

log = logging.getLogger("tradectl.heartbeat")


def new_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Heartbeat:
    name = "heartbeat"

    def __init__(
        self,
        db: Database,
        *,
        instance_id: str,
        group: str,
        interval_s: float,
        version: str,
        role: Callable[[], str] = lambda: "leader",
        state: Callable[[], str] = lambda: "running",
    ) -> None:
        self._db = db
        self.instance_id = instance_id
        self._group = group
        self._interval = interval_s
        self._version = version
        self._role = role
        self._state = state
        self._sup = Supervisor("heartbeat")
        self._started_at: datetime | None = None
        self.last_beat: datetime | None = None

    async def beat(self) -> None:
        now = await self._db.now()
        if self._started_at is None:
            self._started_at = now
        values = {
            "instance_id": self.instance_id,
            "group_name": self._group,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "role": self._role(),
            "state": self._state(),
            "version": self._version,
            "started_at": self._started_at,
            "last_seen": now,
        }
        async with self._db.session() as s:
            await s.exec(upsert(self._db.dialect, HeartbeatRow.__table__, values, ["instance_id"],
                                update=["role", "state", "last_seen", "pid", "host"]))  # type: ignore[call-overload]
        self.last_beat = now

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:  # noqa: BLE001 - a missed beat is logged; health will notice
                log.warning("heartbeat write failed", exc_info=True)
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        await self.beat()
        self._sup.spawn("heartbeat", self._loop())

    async def stop(self) -> None:
        await self._sup.stop()
        try:
            async with self._db.session() as s:
                row = await s.get(HeartbeatRow, self.instance_id)
                if row is not None:
                    row.state = "stopped"
                    s.add(row)
        except Exception:  # noqa: BLE001
            log.warning("could not mark heartbeat stopped", exc_info=True)


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str


async def check_health(db: Database, *, group: str, stale_s: float, host: str | None = None) -> HealthReport:
    host = host or socket.gethostname()
    now = await db.now()
    async with db.session() as s:
        rows = (await s.exec(
            select(HeartbeatRow).where(HeartbeatRow.group_name == group, HeartbeatRow.host == host)
            .order_by(col(HeartbeatRow.last_seen).desc())
        )).all()
    for row in rows:
        age = (now - row.last_seen).total_seconds()
        if row.state != "stopped" and age <= stale_s:
            seen = f"{row.instance_id} {row.role} {row.state}, last seen {age:.1f}s ago"
            problems = await read_problems(db, row.instance_id)  # core/components.py: adapters down, retrying
            if problems:
                return HealthReport(False, f"degraded: {describe(problems)} ({seen})")
            return HealthReport(True, seen)
    if not rows:
        return HealthReport(False, f"no instance of group {group!r} on host {host!r} has written a heartbeat")
    row = rows[0]
    age = (now - row.last_seen).total_seconds()
    return HealthReport(False, f"{row.instance_id} is {row.state}, last seen {age:.1f}s ago (stale after {stale_s:.0f}s)")


def stale_cutoff(now: datetime, stale_s: float) -> datetime:
    return now - timedelta(seconds=stale_s)
