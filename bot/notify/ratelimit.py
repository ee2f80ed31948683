"""A token bucket, and a shared pause for "slow down" answers (429 with a retry-after)."""

from __future__ import annotations

import time


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: "callable[[], float]" = time.monotonic) -> None:  # type: ignore[valid-type]
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._clock = clock
        self._t = clock()
        self._blocked_until = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if now)."""
        self._refill()
        blocked = max(0.0, self._blocked_until - self._clock())
        need = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        return max(blocked, need)

    def take(self) -> None:
        self._refill()
        self._tokens -= 1

    def block_for(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        self._tokens = 0
