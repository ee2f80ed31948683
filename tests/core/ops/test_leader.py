"""Leader election: one conditional statement on the database clock, epochs as fencing tokens."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from core.app.instance_lock import InstanceLock
from core.ops.leader import LeaderElector, Lease
from persistence.db import Database
from tests.core.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]


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
    await eventually(lambda: "b" in active, 3, "the standby took over")
    assert active == {"b": 2}
    assert loop.time() - t0 < 2.5  # released lease: the standby takes over at its next poll, before the 3 s TTL
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


# -- a restarted instance takes over from its proven-dead predecessor at once ------------------------

_HOLD_LOCK = (
    "import asyncio, sys\n"
    "from pathlib import Path\n"
    "from core.app.instance_lock import InstanceLock\n"
    "lock = InstanceLock(Path(sys.argv[1]), sys.argv[2])\n"
    "asyncio.run(lock.start())\n"
    "print('locked' if lock.active else 'no lock', flush=True)\n"
    "sys.stdin.read()\n"
)


async def _predecessor(lock_dir: Path, instance_id: str) -> asyncio.subprocess.Process:
    """A real process holding its instance lock (as `tradectl run` does) until it is killed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(lock_dir), instance_id, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"locked"
    return proc


async def _until(pred: Callable[[], bool], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


async def test_restart_takes_the_lease_of_its_killed_predecessor_at_once(db: Database, tmp_path: Path) -> None:
    """A SIGKILLed leader leaves a lease 30 s from expiry; its successor on the same host and data
    directory proves it dead by its released lock and leads within a poll, not after the TTL."""
    host = socket.gethostname()
    dead_id, new_id = f"{host}:4242:aaaaaa", f"{host}:4243:bbbbbb"
    lock_dir = tmp_path / "instances"
    old = await _predecessor(lock_dir, dead_id)
    lease = Lease(db, "leader:r")
    assert await lease.acquire(dead_id, 30) == 1
    elected: list[int] = []

    async def on_elected(epoch: int) -> None:
        elected.append(epoch)

    async def on_lost() -> None:
        elected.append(-1)

    lock = InstanceLock(lock_dir, new_id)
    await lock.start()
    el = LeaderElector(db, group="r", instance_id=new_id, ttl_s=30, renew_s=1, step_down_s=2,
                       follower_poll_s=0.1, on_elected=on_elected, on_lost=on_lost, death_proof=lock)
    await el.start()
    try:
        # alive (its lock held), merely silent: never taken over
        assert not await _until(lambda: bool(elected), 0.5)
        old.kill()
        await old.wait()
        assert await _until(lambda: elected == [2], 3.0), elected
        held = await lease.current()
        assert held is not None and held.holder == new_id and held.epoch == 2
        assert not (lock_dir / f"{dead_id}.lock").exists()  # the leader sweeps the dead instance's file
    finally:
        await el.stop()
        await lock.stop()


async def test_no_proof_without_the_holders_lock_file_on_this_host(tmp_path: Path) -> None:
    host = socket.gethostname()
    lock = InstanceLock(tmp_path, f"{host}:1:cccccc")
    await lock.start()
    try:
        other_host = f"{host}-other:77:dddddd"
        (tmp_path / f"{other_host}.lock").write_text("77\n")  # a file nobody holds, but not our host
        assert not lock.proves_dead(other_host)
        assert not lock.proves_dead(f"{host}:78:eeeeee")  # no file: another data directory
        assert not lock.proves_dead(f"{host}:1:cccccc")  # ourselves
        assert not lock.proves_dead("../../etc/passwd")
        same_pid = InstanceLock(tmp_path, f"{host}:1:ffffff")  # a live instance with our pid (a second container)
        await same_pid.start()
        assert not lock.proves_dead(f"{host}:1:ffffff")
        await same_pid.stop()
        assert not (tmp_path / f"{host}:1:ffffff.lock").exists()  # a clean stop leaves nothing to prove
    finally:
        await lock.stop()
