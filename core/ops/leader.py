"""One active leader per deployment group, by a lease row on the database clock.

Acquire and renew are one conditional upsert: it succeeds only if the lease has expired or is
already ours, and it bumps ``epoch`` on every takeover (a fencing token that side effects carry).
Time is always the database's ``now()``, never the host clock. A leader that has not renewed
successfully for ``step_down_s`` (shorter than the TTL) stops its leader work *before* the lease can
expire; a graceful stop releases the lease so a standby takes over in about a second.

A crashed leader cannot release its lease. An instance that can *prove* the holder dead (see
:mod:`core.app.instance_lock`: a restarted single instance on the same host and data directory) takes
the lease over at once instead of waiting for it to expire; without that proof it waits, because
a holder that merely looks silent may still be trading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text

from core.runtime.lifecycle import Supervisor, TaskFailed, finish
from core.trading.events import EventBus, LeadershipChanged
from persistence.db import Database

log = logging.getLogger("tradectl.leader")

_SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00')"


def _sqlite_later(seconds: float) -> str:
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', '+{seconds:.3f} seconds') || '000+00:00')"


@dataclass(frozen=True, slots=True)
class LeaseState:
    holder: str
    epoch: int
    expires_at: datetime | None


class Lease:
    """The lease table operations (usable on their own, e.g. by tests and tools)."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name

    def _now(self) -> str:
        return _SQLITE_NOW if self.db.is_sqlite else "now()"

    def _later(self, ttl: float) -> str:
        return _sqlite_later(ttl) if self.db.is_sqlite else f"(now() + make_interval(secs => {ttl:.3f}))"

    async def acquire(self, holder: str, ttl_s: float) -> int | None:
        """Acquire or renew; returns our epoch, or None if someone else holds a live lease."""
        now, later = self._now(), self._later(ttl_s)
        same = f"(leases.holder = excluded.holder AND leases.expires_at > {now})"
        sql = text(
            f"INSERT INTO leases (name, holder, epoch, expires_at, acquired_at) "
            f"VALUES (:name, :holder, 1, {later}, {now}) "
            f"ON CONFLICT (name) DO UPDATE SET "
            f"epoch = CASE WHEN {same} THEN leases.epoch ELSE leases.epoch + 1 END, "
            f"acquired_at = CASE WHEN {same} THEN leases.acquired_at ELSE excluded.acquired_at END, "
            f"holder = excluded.holder, expires_at = excluded.expires_at "
            f"WHERE leases.holder = excluded.holder OR leases.expires_at <= {now} "
            f"RETURNING epoch"
        )
        async with self.db.begin() as conn:
            row = (await conn.execute(sql, {"name": self.name, "holder": holder})).first()
        return int(row[0]) if row else None

    async def take_over(self, dead: str, epoch: int, holder: str, ttl_s: float) -> int | None:
        """Take a live lease from ``dead`` at ``epoch`` (a holder proven dead); returns our new epoch,
        or None if the lease changed meanwhile (another instance was quicker, or it was renewed)."""
        sql = text(
            f"UPDATE leases SET holder = :holder, epoch = epoch + 1, expires_at = {self._later(ttl_s)}, "
            f"acquired_at = {self._now()} WHERE name = :name AND holder = :dead AND epoch = :epoch "
            f"RETURNING epoch"
        )
        async with self.db.begin() as conn:
            row = (await conn.execute(sql, {"name": self.name, "holder": holder, "dead": dead, "epoch": epoch})).first()
        return int(row[0]) if row else None

    async def release(self, holder: str, epoch: int) -> bool:
        sql = text(f"UPDATE leases SET expires_at = {self._now()} "
                   f"WHERE name = :name AND holder = :holder AND epoch = :epoch")
        async with self.db.begin() as conn:
            res = await conn.execute(sql, {"name": self.name, "holder": holder, "epoch": epoch})
        return bool(res.rowcount)

    async def holds(self, holder: str, epoch: int) -> bool:
        """True if ``holder`` still holds the lease at ``epoch`` (the fencing check)."""
        sql = text(f"SELECT 1 FROM leases WHERE name = :name AND holder = :holder AND epoch = :epoch "
                   f"AND expires_at > {self._now()}")
        async with self.db.connect() as conn:
            return (await conn.execute(sql, {"name": self.name, "holder": holder, "epoch": epoch})).first() is not None

    async def current(self) -> LeaseState | None:
        sql = text(f"SELECT holder, epoch, expires_at, (expires_at > {self._now()}) AS live "
                   f"FROM leases WHERE name = :name")
        async with self.db.connect() as conn:
            row = (await conn.execute(sql, {"name": self.name})).first()
        if row is None or not row[3]:
            return None
        return LeaseState(row[0], int(row[1]), None)


LeaderCallback = Callable[[int], Awaitable[None]]


class Leadership:
    """What this instance knows about its leadership: the lease, and the epoch while it leads.

    The :class:`LeaderElector` writes it; whatever must know whether it still leads reads it when it
    needs to (the trading core's leader label, the heartbeat's role, Telegram's fence before each
    update, a 409 Conflict asking for a recheck). Built before all of them, so each is complete at
    construction and none holds the elector.
    """

    def __init__(self, lease: Lease, instance_id: str) -> None:
        self.lease = lease
        self.instance_id = instance_id
        self.epoch: int | None = None
        self.wake = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.epoch is not None

    def label(self) -> str | None:
        return f"{self.instance_id} (epoch {self.epoch})" if self.epoch is not None else None

    def role(self) -> str:
        return "leader" if self.is_leader else "follower"

    def recheck(self) -> None:
        """Ask for an immediate lease check (e.g. after Telegram answered 409 Conflict)."""
        self.wake.set()

    async def still_leader(self, epoch: int) -> bool:
        """The fence checked before a side effect: our epoch, and the lease still ours in the database."""
        return self.epoch == epoch and await self.lease.holds(self.instance_id, epoch)


class DeathProof(Protocol):
    """Tells whether a leaseholder is certainly dead (:class:`~core.app.instance_lock.InstanceLock`)."""

    def proves_dead(self, holder: str) -> bool: ...
    def sweep(self) -> int: ...


class LeaderElector:
    """Runs leader work only while holding the lease. A component: ``start()``/``stop()``.

    The lease loop runs under a :class:`~core.runtime.lifecycle.Supervisor` named ``leader:lease``;
    ``on_failure`` hears of it if it crashes (leader work that cannot start after a re-election): the
    service then stops with exit 1 rather than staying up as a follower that will never lead again.
    """

    name = "leader"

    def __init__(
        self,
        db: Database,
        *,
        group: str,
        instance_id: str,
        ttl_s: float = 15.0,
        renew_s: float = 5.0,
        step_down_s: float = 10.0,
        follower_poll_s: float = 1.0,
        on_elected: LeaderCallback,
        on_lost: Callable[[], Awaitable[None]],
        events: EventBus | None = None,
        death_proof: DeathProof | None = None,
        leadership: Leadership | None = None,
        on_failure: Callable[[TaskFailed], None] | None = None,
    ) -> None:
        if not step_down_s < ttl_s:
            raise ValueError("leader step_down_s must be shorter than ttl_s")
        if leadership is None:
            leadership = Leadership(Lease(db, f"leader:{group}"), instance_id)
        self.leadership = leadership
        self.lease = self.leadership.lease
        self.instance_id = instance_id
        self.ttl_s, self.renew_s, self.step_down_s, self.follower_poll_s = ttl_s, renew_s, step_down_s, follower_poll_s
        self._on_elected, self._on_lost = on_elected, on_lost
        self._events = events
        self._death_proof = death_proof
        self._last_ok = 0.0
        self._sup = Supervisor("leader", on_failure=on_failure)
        self._task: asyncio.Task[Any] | None = None
        self._wake = self.leadership.wake
        self._stopping = False
        self.transitions = 0

    @property
    def epoch(self) -> int | None:
        return self.leadership.epoch

    @epoch.setter
    def epoch(self, value: int | None) -> None:
        self.leadership.epoch = value

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    async def start(self) -> None:
        if self._task is None:
            await self._tick()
            self._task = self._sup.spawn("leader:lease", self._loop())

    def recheck(self) -> None:
        """Ask for an immediate lease check (e.g. after Telegram answered 409 Conflict)."""
        self.leadership.recheck()

    async def _loop(self) -> None:
        while not self._stopping:
            interval = self.renew_s if self.is_leader else self.follower_poll_s
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            await self._tick()

    async def _tick(self) -> None:
        try:
            epoch = await self.lease.acquire(self.instance_id, self.ttl_s)
        except Exception as exc:  # noqa: BLE001 - a failed renewal is handled by the deadline below
            log.warning("lease renewal failed: %s", exc)
            if self.is_leader and time.monotonic() - self._last_ok > self.step_down_s:
                await self._step_down("no successful renewal within the step-down deadline")
            return
        if epoch is None and not self.is_leader:
            epoch = await self._take_from_the_dead()
        if epoch is None:
            if self.is_leader:
                await self._step_down("lease held by another instance")
            return
        self._last_ok = time.monotonic()
        if self.epoch != epoch:
            if self.is_leader:
                await self._step_down("lease epoch changed")
            self.epoch = epoch
            self.transitions += 1
            log.info("became leader (epoch %d)", epoch)
            if self._death_proof is not None:
                self._death_proof.sweep()
            if self._events:
                elected = LeadershipChanged(instance_id=self.instance_id, leader=True, epoch=epoch)
                await self._events.announce(self.lease.db, elected)
            try:
                await self._on_elected(epoch)
            except Exception:
                log.exception("leader work failed to start; releasing the lease")
                await self._step_down("leader work failed to start")
                raise

    async def _take_from_the_dead(self) -> int | None:
        """The lease is held by someone else: take it at once if the holder is proven dead."""
        if self._death_proof is None:
            return None
        try:
            held = await self.lease.current()
            if held is None or not self._death_proof.proves_dead(held.holder):
                return None
            epoch = await self.lease.take_over(held.holder, held.epoch, self.instance_id, self.ttl_s)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            log.warning("could not take over the lease of a dead instance: %s", exc)
            return None
        if epoch is not None:
            log.info("took over the lease of %s (epoch %d): that instance is no longer running",
                     held.holder, held.epoch)
        return epoch

    async def _step_down(self, reason: str) -> None:
        epoch, self.epoch = self.epoch, None
        log.warning("stepping down as leader: %s", reason)
        try:
            await self._on_lost()
        finally:
            if self._events and epoch is not None:
                lost = LeadershipChanged(instance_id=self.instance_id, leader=False, epoch=epoch)
                await self._events.announce(self.lease.db, lost)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let a renewal in progress finish (cancelling it mid-transaction could leave the database
        locked on SQLite), then step down and release the lease."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await finish({self._task}, grace_s)
            self._task = None
        if self.epoch is not None:
            epoch = self.epoch
            await self._step_down("shutting down")
            try:
                await self.lease.release(self.instance_id, epoch)
            except Exception:
                log.warning("could not release the lease; it expires in %.0fs", self.ttl_s, exc_info=True)
