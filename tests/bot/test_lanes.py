"""Chat lanes: order per chat, chats independent, bounded, the kill lane never waits, one failure stays one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.lanes import ChatLanes, LaneLimits


def recorder(log: list[str], name: str, gate: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        if gate is not None:
            await gate.wait()
        log.append(name)

    return work


async def test_a_chat_keeps_its_order_and_a_blocked_chat_does_not_hold_up_another() -> None:
    lanes, done = ChatLanes("t"), []
    gate = asyncio.Event()
    lanes.submit("a", recorder(done, "a1", gate))
    lanes.submit("a", recorder(done, "a2"))
    lanes.submit("b", recorder(done, "b1"))
    await asyncio.sleep(0.05)
    assert done == ["b1"]
    gate.set()
    await lanes.drain(5.0)
    assert done == ["b1", "a1", "a2"]


async def test_urgent_work_runs_at_once_ahead_of_its_own_chat() -> None:
    lanes, done = ChatLanes("t"), []
    gate = asyncio.Event()
    lanes.submit("g", recorder(done, "slow", gate))
    lanes.submit("g", recorder(done, "queued"))
    lanes.submit("g", recorder(done, "kill"), urgent=True)
    await asyncio.sleep(0.05)
    assert done == ["kill"]
    gate.set()
    await lanes.drain(5.0)
    assert done == ["kill", "slow", "queued"]


async def test_bounds_drop_what_does_not_fit_and_count_it() -> None:
    lanes, done = ChatLanes("t", LaneLimits(per_chat=2, total=3, urgent=1, running=1)), []
    gate = asyncio.Event()
    assert lanes.submit("a", recorder(done, "a1", gate))
    assert lanes.submit("a", recorder(done, "a2"))
    assert not lanes.submit("a", recorder(done, "a3"))  # the chat is full
    assert lanes.submit("b", recorder(done, "b1"))
    assert not lanes.submit("c", recorder(done, "c1"))  # all chats together are full
    assert lanes.submit("c", recorder(done, "u1", gate), urgent=True)
    assert not lanes.submit("c", recorder(done, "u2"), urgent=True)  # urgent budget used: queued like others, full
    assert lanes.dropped == 3 and lanes.backlogged()
    gate.set()
    await lanes.drain(5.0)
    assert sorted(done) == ["a1", "a2", "b1", "u1"]


async def test_at_most_running_ordinary_updates_at_once() -> None:
    lanes = ChatLanes("t", LaneLimits(running=2))
    active, peak = 0, 0

    async def work() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1

    for chat in range(20):
        lanes.submit(str(chat), work)
    await lanes.drain(5.0)
    assert peak == 2 and lanes.handled == 20


async def test_a_failing_update_is_logged_and_its_chat_goes_on() -> None:
    lanes, done = ChatLanes("t"), []

    async def broken() -> None:
        raise RuntimeError("boom")

    lanes.submit("a", broken)
    lanes.submit("a", recorder(done, "after"))
    assert await lanes.drain(5.0) == 0
    assert done == ["after"] and lanes.failed == 1 and lanes.handled == 1


async def test_wait_settled_returns_at_once_during_a_backlog_and_drain_cancels_the_rest() -> None:
    lanes, done = ChatLanes("t"), []
    gate = asyncio.Event()
    lanes.submit("a", recorder(done, "a1", gate))
    assert not await lanes.wait_settled(0.05)  # one running, nothing behind it: waited the full time
    lanes.submit("a", recorder(done, "a2"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await lanes.wait_settled(5.0)  # a backlog: the caller should not wait for it
    assert loop.time() - started < 3.0  # far below the 5 s it would wait for; room for a loaded machine
    assert await lanes.drain(0.05) == 2 and done == []
    assert not lanes.submit("a", recorder(done, "late"))


async def test_paused_ordinary_work_waits_while_urgent_work_still_runs() -> None:
    lanes, done = ChatLanes("t"), []
    lanes.pause_ordinary(True)  # more updates wait upstream: fetch them first
    lanes.submit("a", recorder(done, "status"))
    lanes.submit("b", recorder(done, "kill"), urgent=True)
    await asyncio.sleep(0.05)
    assert done == ["kill"]
    lanes.pause_ordinary(False)
    await lanes.drain(5.0)
    assert done == ["kill", "status"]


async def test_no_ordinary_work_starts_while_urgent_work_runs() -> None:
    lanes, done = ChatLanes("t"), []
    kill_done = asyncio.Event()
    lanes.submit("k", recorder(done, "kill", kill_done), urgent=True)
    lanes.submit("a", recorder(done, "status"))
    await asyncio.sleep(0.05)
    assert done == []  # the status waits for the kill, though it is in another chat
    kill_done.set()
    await lanes.drain(5.0)
    assert done == ["kill", "status"]
