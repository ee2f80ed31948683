"""Leader election: one conditional statement on the database clock, epochs as fencing tokens."""

from __future__ import annotations

import asyncio

from core.leader import Lease, LeaderElector
from persistence.db import Database


async def test_lease_acquire_renew_takeover_and_release(db: Database) -> None:
    lease = Lease(db, "leader:t")
    assert await lease.acquire("a", 30) == 1
    assert await lease.acquire("b", 30) is None  # live lease held by a
    assert await lease.acquire("a", 30) == 1  # renewal keeps the epoch
    assert await lease.holds("a", 1)
    assert await lease.release("a", 1)
    assert not await lease.holds("a", 1)
    assert await lease.acquire("b", 30) == 2  # takeover bumps the epoch
    assert not await lease.release("a", 1)  # a stale holder cannot release someone else's lease
    assert await lease.holds("b", 2)


async def test_expired_lease_is_taken_over(db: Database) -> None:
    lease = Lease(db, "leader:e")
    assert await lease.acquire("a", 0.3) == 1
    await asyncio.sleep(0.5)
    assert await lease.acquire("b", 30) == 2
    assert await lease.acquire("a", 30) is None


async def test_exactly_one_elector_leads_and_graceful_stop_hands_over(db: Database) -> None:
    active: dict[str, int] = {}

    def make(name: str) -> LeaderElector:
        async def elected(epoch: int) -> None:
            active[name] = epoch

        async def lost() -> None:
            active.pop(name, None)

        return LeaderElector(db, group="g", instance_id=name, ttl_s=3, renew_s=1, step_down_s=2,
                             follower_poll_s=0.1, on_elected=elected, on_lost=lost)

    a, b = make("a"), make("b")
    await a.start()
    await b.start()
    assert active == {"a": 1}
    assert a.is_leader and not b.is_leader
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await a.stop()
    while "b" not in active and loop.time() - t0 < 3:
        await asyncio.sleep(0.02)
    assert active == {"b": 2}
    assert loop.time() - t0 < 1.0  # released lease: the standby takes over at its next poll
    await b.stop()
    assert active == {}


async def test_leader_steps_down_when_renewals_fail(db: Database) -> None:
    events: list[str] = []

    async def elected(epoch: int) -> None:
        events.append(f"up{epoch}")

    async def lost() -> None:
        events.append("down")

    el = LeaderElector(db, group="s", instance_id="x", ttl_s=1.5, renew_s=0.2, step_down_s=0.6,
                       on_elected=elected, on_lost=lost)
    await el.start()
    assert events == ["up1"]
    await db.stop()  # the database becomes unreachable for this instance
    await asyncio.sleep(1.2)
    assert events == ["up1", "down"]
    assert not el.is_leader
    await db.start()
    await el.stop()
