"""The error-burst breaker's count: venue errors over the last ``trading.error_window_s`` seconds.

Every venue error the trading core meets is recorded here: those of the feed and of the protection loop
(the engine), and every failed try of an order send or cancel (the executor's ``on_exchange_error``,
including the tries it retries). The engine pauses entries once ``trading.error_burst`` of them fall
within the window: at the error it meets itself, and on each protection pass for the executor's.
Built by the assembly before both, so neither reaches into the other.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from exchanges.errors import ExchangeError

log = logging.getLogger("tradectl.engine")


class ErrorBurst:
    """Venue errors within the last ``window_s`` seconds; a burst once ``size`` of them are (:meth:`take`)."""

    def __init__(self, size: int, window_s: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.size, self.window_s = size, window_s
        self._monotonic = monotonic
        self._times: deque[float] = deque(maxlen=max(100, size))
        self.total = 0

    def record(self, exc: ExchangeError) -> None:
        self.total += 1
        self._times.append(self._monotonic())
        log.warning("exchange error: %s", exc)

    def recent(self) -> int:
        """How many errors fall within the window now."""
        now = self._monotonic()
        return sum(1 for t in self._times if now - t <= self.window_s)

    def take(self) -> int:
        """The number of errors within the window when they are a burst (at least ``size``), and the
        window starts afresh; 0 otherwise."""
        n = self.recent()
        if n < self.size:
            return 0
        self._times.clear()
        return n
