"""Units of loop work (one candle, one protection pass, recovery's first part) that a stop lets finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Work:
    """Counts work in progress; :meth:`quiet` waits until there is none. Cancelling a loop
    mid-transaction could leave orders half-recorded and, on SQLite, the database locked."""

    def __init__(self) -> None:
        self._busy = 0
        self._quiet = asyncio.Event()  # set while nothing is in progress
        self._quiet.set()

    @property
    def busy(self) -> bool:
        return self._busy > 0

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        self._busy += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._quiet.set()

    async def quiet(self) -> None:
        await self._quiet.wait()
