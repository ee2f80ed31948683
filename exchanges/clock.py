"""Injected time: the wall clock for live and paper trading, a simulated one for replay and backtests.

Everything that stamps or waits on *market* time takes a :class:`Clock` instead of calling
``datetime.now`` or ``asyncio.sleep`` itself, so the same engine code runs live and against
history. Simulated latency and replay pacing are *wall* time and deliberately do not go through
the clock.

:class:`SimClock` never moves by itself. Whoever owns the simulation drives it with
:meth:`SimClock.advance_to` (the :class:`~exchanges.replay.ReplayFeed` does this with each candle's
close time), and every :meth:`SimClock.sleep` whose target has been reached then returns. A backtest
with no driver that still wants ``sleep`` to pass can build the clock with ``auto_advance=True``:
each ``sleep`` then jumps simulated time forward to its own target and returns at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """Current time (timezone-aware UTC) and a sleep measured on the same clock."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The host's clock. ``sleep`` is :func:`asyncio.sleep`."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    """Simulated time that moves only when told to.

    Time never goes backwards: :meth:`advance_to` with an earlier instant raises ``ValueError``,
    because a replay that moves back in time is a bug (a looping replay must start a new clock).
    Sleepers are woken in deadline order when time reaches them; a sleep of zero or less still
    yields to the event loop once, like ``asyncio.sleep(0)``.
    """

    def __init__(self, start: datetime = EPOCH, *, auto_advance: bool = False) -> None:
        self._now = _utc(start)
        self.auto_advance = auto_advance
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        """Move simulated time to ``when`` and wake every sleeper whose target has passed."""
        when = _utc(when)
        if when < self._now:
            raise ValueError(f"simulated time cannot go back from {self._now.isoformat()} to {when.isoformat()}")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, delta: timedelta | float) -> None:
        """Move forward by a duration (seconds or a ``timedelta``)."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.advance_to(self._now + step)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, when: datetime) -> None:
        """Return once simulated time has reached ``when`` (at once when it already has)."""
        when = _utc(when)
        if when <= self._now:
            await asyncio.sleep(0)
            return
        if self.auto_advance:
            self.advance_to(when)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """How many sleeps are still waiting (cancelled ones included until time passes them)."""
        return sum(1 for *_, fut in self._sleepers if not fut.done())


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime refused: use timezone-aware UTC")
    return value.astimezone(UTC)
