"""A token bucket, and a shared pause for "slow down" answers (429 with a retry-after).

Not :class:`aiolimiter.AsyncLimiter` (which the venues use for plain request caps): its users here
need what that limiter does not offer — the wait *before* taking a token, without waiting (the
outbox claims rows only when it can send, and pauses interruptibly; the Telegram overall pace hands
turns to kill-lane replies first, which a first-come limiter cannot), a pause for the time a 429
names that also empties the bucket, and an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class PacingObserver(Protocol):
    """Told each wait before a chat reply or an alert is sent (the metrics, when enabled): ``reason`` is
    ``pace`` (our own per-chat, overall or per-destination limits) or ``retry_after`` (the platform
    answered 429 and named a time). ``platform`` is the platform's name, a bounded label."""

    def chat_send_waited(self, platform: str, reason: str, seconds: float) -> None: ...


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; callers ask :meth:`wait_time`, then :meth:`take`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
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

    def blocked(self) -> bool:
        """Whether the wait is a "slow down" answer's (:meth:`block_for`) rather than the rate's own."""
        return self._blocked_until > self._clock()

    def take(self) -> None:
        self._refill()
        self._tokens -= 1

    def block_for(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        self._tokens = 0
