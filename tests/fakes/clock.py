"""The one hand-moved clock of the test suite: it satisfies :class:`exchanges.clock.Clock` and moves
only when a test says so (confirmation expiry, stale messages, rate windows, candle closes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """Time that moves by :meth:`advance` or :meth:`set`; :meth:`sleep` moves it by the time slept and
    yields once to the event loop, so code that sleeps on the clock runs on without real waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or DEFAULT_START

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
