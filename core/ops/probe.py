"""What ``tradectl health`` reads: the heartbeats, and the component records beside them.

Docker runs the probe every 15 s, so this module loads only the database handle and SQLAlchemy Core: the two
tables are read through Core clauses naming the columns it needs, not through the ORM models (loading every
SQLModel class would cost each probe ~5 MB and a tenth of a second of CPU). The writers —
:class:`~core.ops.heartbeat.Heartbeat` and :class:`~core.ops.components.ComponentPublisher` — use the models;
tests/persistence keeps the models and the migrations in step, and the probe's tests read what the writers wrote.

The record of components that are down (one ``runtime_values`` row per instance, JSON) is defined here,
its writer and reader side by side.
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import String, column, select, table

from persistence.db import Database
from persistence.types import UTCDateTime

ComponentState = Literal["starting", "up", "idle", "down"]
KEY_PREFIX = "components:"
MAX_STORED = 1900  # runtime_values.value holds 2000 characters

_HEARTBEATS = table("heartbeats", column("instance_id", String), column("group_name", String),
                    column("host", String), column("role", String), column("state", String),
                    column("last_seen", UTCDateTime()))
_RECORDS = table("runtime_values", column("key", String), column("value", String))


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    state: ComponentState
    reason: str
    since: datetime

    @property
    def healthy(self) -> bool:
        return self.state != "down"

    def describe(self) -> str:
        return f"{self.name} {self.state}" + (f" ({self.reason})" if self.reason else "")


def describe(problems: tuple[ComponentStatus, ...]) -> str:
    return "; ".join(p.describe() for p in problems)


def encode(statuses: tuple[ComponentStatus, ...]) -> str:
    items = [{"name": s.name, "state": s.state, "reason": s.reason, "since": s.since.isoformat()} for s in statuses]
    text = json.dumps(items, separators=(",", ":"))
    while len(text) > MAX_STORED and items:  # keep the first ones whole rather than all of them cut
        items.pop()
        more = {"name": "...", "state": "down", "reason": "more components down",
                "since": statuses[0].since.isoformat()}
        text = json.dumps([*items, more], separators=(",", ":"))
    return text


def decode(text: str) -> tuple[ComponentStatus, ...]:
    out = []
    for item in json.loads(text or "[]"):
        state = item.get("state")
        out.append(ComponentStatus(str(item.get("name", "?")), state if state in ("starting", "up", "idle", "down")
                                   else "down", str(item.get("reason", "")),
                                   datetime.fromisoformat(item["since"]) if item.get("since") else now_utc()))
    return tuple(out)


def record_key(instance_id: str) -> str:
    """The ``runtime_values`` key of an instance's component record (hashed when the id is long)."""
    key = KEY_PREFIX + instance_id
    return key if len(key) <= 128 else KEY_PREFIX + "h:" + hashlib.sha256(instance_id.encode()).hexdigest()


async def read_problems(db: Database, instance_id: str) -> tuple[ComponentStatus, ...]:
    """The components ``instance_id`` last published as down (none when it published nothing)."""
    async with db.begin() as conn:
        value = (await conn.execute(select(_RECORDS.c.value).where(_RECORDS.c.key == record_key(instance_id)))).scalar()
    if not value:
        return ()
    try:
        return tuple(p for p in decode(value) if not p.healthy)
    except (ValueError, KeyError, TypeError, AttributeError):
        return (ComponentStatus("components", "down", "unreadable component record", now_utc()),)


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str


async def check_health(db: Database, *, group: str, stale_s: float, host: str | None = None) -> HealthReport:
    """Healthy when an instance of ``group`` on ``host`` (this one by default: a container's hostname is its
    own) beat within ``stale_s`` and published no component as down."""
    host = host or socket.gethostname()
    now = await db.now()
    hb = _HEARTBEATS.c
    async with db.begin() as conn:
        rows = (await conn.execute(
            select(hb.instance_id, hb.role, hb.state, hb.last_seen).where(hb.group_name == group, hb.host == host)
            .order_by(hb.last_seen.desc())
        )).all()
    for row in rows:
        age = (now - row.last_seen).total_seconds()
        if row.state != "stopped" and age <= stale_s:
            seen = f"{row.instance_id} {row.role} {row.state}, last seen {age:.1f}s ago"
            problems = await read_problems(db, row.instance_id)  # adapters down, retrying (core/ops/components.py)
            if problems:
                return HealthReport(False, f"degraded: {describe(problems)} ({seen})")
            return HealthReport(True, seen)
    if not rows:
        return HealthReport(False, f"no instance of group {group!r} on host {host!r} has written a heartbeat")
    row = rows[0]
    age = (now - row.last_seen).total_seconds()
    return HealthReport(False, f"{row.instance_id} is {row.state}, last seen {age:.1f}s ago "
                               f"(stale after {stale_s:.0f}s)")
