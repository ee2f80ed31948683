"""Waiting before trying again, for the chat layer's loops, in the project's retry vocabulary
(:mod:`exchanges.retry`): a bounded retry of one call is a :class:`~exchanges.retry.RetryPolicy` (tenacity);
a loop that never gives up — reconnecting to a platform, delivering an alert, sending one reply until
Telegram takes it — counts its consecutive failures in an :class:`Escalating` delay instead.
"""

from __future__ import annotations

from exchanges.retry import Backoff

# Backoff.delay(n) doubles n times: 16 doublings pass any sensible maximum, and a count that kept
# growing through a day-long outage would overflow the float.
MAX_DOUBLINGS = 16


class Escalating:
    """The delay before each next try: ``backoff``'s sequence over consecutive failures, back to its
    start on :meth:`reset`. The first ``free`` failures wait nothing (a conflict that resolves itself)."""

    def __init__(self, backoff: Backoff, *, free: int = 0) -> None:
        self.backoff = backoff
        self.free = free
        self.failures = 0

    def next(self) -> float:
        """The wait after one more failure."""
        n = self.failures - self.free
        self.failures = min(self.failures + 1, self.free + MAX_DOUBLINGS)
        return 0.0 if n < 0 else self.backoff.delay(n)

    def longest(self) -> float:
        """Wait the longest from now on (a refusal only a configuration change can fix)."""
        self.failures = self.free + MAX_DOUBLINGS
        return self.backoff.max_s

    def reset(self) -> None:
        self.failures = 0
