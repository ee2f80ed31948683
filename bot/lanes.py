"""Incoming updates handled concurrently per chat, in bounded queues, with a lane for the kill switch.

A chat platform hands the adapter a stream of updates from every chat at once. Handled one at a
time, one chat's flood (a stranger, a viewer past the rate limit) delays every other chat and the
kill switch behind it. :class:`ChatLanes` gives each chat its own FIFO lane with one worker, so a
chat's messages keep their order while chats proceed independently, and runs urgent updates (the
kill lane: ``/kill``, ``/closeall``, ``/pause`` and their confirmations, as the dispatcher
classifies them) at once, never behind a queue.

Everything is bounded: a chat holds at most ``per_chat`` waiting updates and all chats together
``total``; what does not fit is dropped and counted (a chat that far behind is flooding, and its
excess would be refused anyway). At most ``running`` ordinary updates are handled at once, whatever
the number of chats — a thousand strangers at once would otherwise queue a thousand transactions
in front of the kill's — and none starts while urgent work runs, so the kill competes only with
the few already under way (SQLite serves waiting writers in no particular order), or while the
adapter pauses ordinary work to fetch first (:meth:`pause_ordinary`). Urgent updates
run at once, up to ``urgent`` at a time (beyond that they wait in their chat's lane like any
other). One failing update is logged and its lane goes on.

What is not done here: authorization, rate limits, de-duplication — the dispatcher does those.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.dispatcher import Dispatcher
from bot.identity import Actor, ChatRef
from core.runtime import Supervisor

log = logging.getLogger("tradectl.bot.lanes")
Work = Callable[[], Awaitable[object]]
DROP_LOG_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class LaneLimits:
    """How much may wait: per chat, over all chats, and how many urgent updates run at once."""

    per_chat: int = 100
    total: int = 2000
    urgent: int = 32
    running: int = 4

    def __post_init__(self) -> None:
        if min(self.per_chat, self.total, self.urgent, self.running) < 1:
            raise ValueError("lane limits must be positive")


@dataclass(frozen=True, slots=True)
class LaneStats:
    queued: int
    running_urgent: int
    handled: int
    failed: int
    dropped: int


class ChatLanes:
    """Per-chat FIFO lanes plus an urgent lane. ``submit`` never blocks; ``drain`` finishes the work."""

    def __init__(self, name: str, limits: LaneLimits | None = None) -> None:
        self.name = name
        self.limits = limits or LaneLimits()
        self._lanes: dict[str, deque[Work]] = {}
        self._queued = 0
        self._urgent = 0
        self._seq = itertools.count()
        self._supervisor = Supervisor(f"{name}:lanes")
        self._slots = asyncio.Semaphore(self.limits.running)
        self._go = asyncio.Event()  # ordinary work may start: no urgent work running, not paused
        self._go.set()
        self._paused = False
        self._changed = asyncio.Event()
        self._closed = False
        self.handled = self.failed = self.dropped = 0
        self._dropped_logged = 0
        self._last_drop_log = -1e9

    # -- admission -----------------------------------------------------------------------------

    def submit(self, chat: str, work: Work, *, urgent: bool = False, what: str = "update") -> bool:
        """Queue ``work`` for ``chat`` (or run it at once when ``urgent``); False when it was dropped."""
        if self._closed:
            self._drop(chat, what, "stopping")
            return False
        if urgent and self._urgent < self.limits.urgent:
            self._urgent += 1
            self._go.clear()
            self._supervisor.spawn(f"{self.name}:urgent:{next(self._seq)}", self._run_urgent(work, what))
            return True
        lane = self._lanes.get(chat)
        if lane is not None and len(lane) >= self.limits.per_chat:
            self._drop(chat, what, f"{len(lane)} waiting in this chat")
            return False
        if self._queued >= self.limits.total:
            self._drop(chat, what, f"{self._queued} waiting in all chats")
            return False
        if lane is None:
            lane = self._lanes[chat] = deque()
            self._supervisor.spawn(f"{self.name}:chat:{chat}", self._serve(chat, lane))
        lane.append(work)
        self._queued += 1
        return True

    def has_room(self, chat: str) -> bool:
        """Whether an ordinary update of ``chat`` would be queued now (an urgent one always is)."""
        lane = self._lanes.get(chat)
        return not self._closed and (lane is None or len(lane) < self.limits.per_chat) \
            and self._queued < self.limits.total

    def refuse(self, chat: str, what: str = "update") -> None:
        """Count an update the caller dropped because :meth:`has_room` said no (before doing any work on it)."""
        self._drop(chat, what, "its chat's queue is full")

    def _drop(self, chat: str, what: str, why: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY_S:
            since = self.dropped - self._dropped_logged
            log.warning("%s: %s from chat %s dropped (%s); %d dropped since the last notice",
                        self.name, what, chat, why, since)
            self._last_drop_log, self._dropped_logged = now, self.dropped

    # -- workers -------------------------------------------------------------------------------

    async def _serve(self, chat: str, lane: deque[Work]) -> None:
        try:
            while lane:
                await self._go.wait()
                async with self._slots:
                    await self._one(lane[0], "update")
                lane.popleft()
                self._queued -= 1
                self._changed.set()
        finally:
            if self._lanes.get(chat) is lane:
                del self._lanes[chat]
                self._queued -= len(lane)  # only when cancelled with work left
            self._changed.set()

    async def _run_urgent(self, work: Work, what: str) -> None:
        try:
            await self._one(work, what)
        finally:
            self._urgent -= 1
            self._update_go()
            self._changed.set()

    async def _one(self, work: Work, what: str) -> None:
        try:
            await work()
            self.handled += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            log.exception("%s: handling an %s failed; the chat's next updates go on", self.name, what)

    def pause_ordinary(self, paused: bool) -> None:
        """Start no new ordinary work while ``paused`` (urgent work still runs at once). The Telegram
        adapter pauses while the Bot API still holds more than a batch: fetching first is what reaches
        a kill press queued behind a flood soonest."""
        self._paused = paused
        self._update_go()

    def _update_go(self) -> None:
        if self._urgent == 0 and not self._paused:
            self._go.set()
        else:
            self._go.clear()

    # -- observing and stopping ----------------------------------------------------------------

    def stats(self) -> LaneStats:
        return LaneStats(self._queued, self._urgent, self.handled, self.failed, self.dropped)

    def settled(self) -> bool:
        """Nothing waiting or running."""
        return self._queued == 0 and self._urgent == 0

    def backlogged(self) -> bool:
        """More is waiting than can run, or some chat has updates behind the one being handled: a flood
        is being worked off."""
        return self._queued > self.limits.running or any(len(lane) > 1 for lane in self._lanes.values())

    async def wait_settled(self, timeout: float) -> bool:
        """Wait until everything submitted is handled (True), a backlog builds up, or ``timeout`` passes."""
        end = time.monotonic() + timeout
        while not self.settled():
            left = end - time.monotonic()
            if left <= 0 or self.backlogged():
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return self.settled()
        return True

    async def drain(self, timeout: float) -> int:
        """Take no more; give what was submitted ``timeout`` seconds, then cancel the rest.

        Returns how many waiting updates were cancelled unhandled."""
        self._closed = True
        self.pause_ordinary(False)
        end = time.monotonic() + timeout
        while not self.settled() and time.monotonic() < end:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, end - time.monotonic()))
            except TimeoutError:
                break
        left = self._queued + self._urgent
        if left:
            log.error("%s: %d update(s) not handled within %.1fs of stopping", self.name, left, timeout)
        await self._supervisor.stop(timeout=1.0)
        self._lanes.clear()
        self._queued = self._urgent = 0
        return left


# -- the kill lane ---------------------------------------------------------------------------------


def is_urgent(dispatcher: Dispatcher, actor: Actor, chat: ChatRef, text: str | None, payload: str | None) -> bool:
    """Whether an update goes in the kill lane, as the dispatcher decides it (in memory, no database):
    ``/kill``, ``/closeall``, ``/pause`` and confirmation buttons from someone allowed to use them."""
    try:
        return dispatcher.urgent(actor, chat, text, payload)
    except Exception:
        log.exception("classifying an update for the kill lane failed; handled in its chat's lane")
        return False
