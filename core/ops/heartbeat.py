"""Heartbeats: each running instance upserts its row; ``tradectl health`` reads them.

The health probe needs no credentials: it asks the database whether an instance of this
deployment group *on this host* (a container's hostname is its own) was seen recently. Its reader is
:func:`core.ops.probe.check_health` (re-exported here), kept apart so the probe loads no ORM model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime

from core.ops.probe import HealthReport as HealthReport
from core.ops.probe import check_health as check_health
from core.runtime.lifecycle import Supervisor, TaskFailed
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
        on_failure: Callable[[TaskFailed], None] | None = None,
    ) -> None:
        self._db = db
        self.instance_id = instance_id
        self._group = group
        self._interval = interval_s
        self._version = version
        self._role = role
        self._state = state
        self._sup = Supervisor("heartbeat", on_failure=on_failure)
        self._started_at: datetime | None = None

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
        async with self._db.begin() as conn:
            await conn.execute(upsert(self._db.dialect, HeartbeatRow, values, ["instance_id"],
                                      update=["role", "state", "last_seen", "pid", "host"]))

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:
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
        except Exception:
            log.warning("could not mark heartbeat stopped", exc_info=True)
