"""Per-actor sliding-window rate limit against floods (a stuck client, a script, a spammer).

Kept in memory: a flood hits the instance that receives it, and a restart forgiving a minute of
history is harmless. The number of tracked actors is bounded so a flood of distinct ids cannot
grow memory without limit.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta

from exchanges.clock import Clock

WINDOW = timedelta(minutes=1)
# The kill lane: the commands that stop trading. Their own budget per actor, far above any human's
# pace, so that no amount of other traffic (29 /status in a minute) can refuse a /kill or its Confirm.
KILL_LANE = frozenset({"kill", "closeall", "pause"})
KILL_LANE_PER_MINUTE = 120


def in_kill_lane(command: str, permitted: bool) -> bool:
    """A kill-lane command that the actor's role allows (an admin's /kill, a trader's /pause)."""
    return permitted and command in KILL_LANE


class RateLimiter:
    """Sliding window per key. Both maps (hits, and keys told they are limited) hold at most
    ``max_actors`` keys, least recently used out first: a flood of distinct ids costs bounded memory,
    at worst forgetting that an evicted key was already told."""

    def __init__(self, per_minute: int, clock: Clock, max_actors: int = 10_000) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._hits: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._warned: OrderedDict[str, datetime] = OrderedDict()
        self._max_actors = max_actors

    def allow(self, key: str) -> bool:
        """Count one attempt; False once the actor exceeded ``per_minute`` in the last minute."""
        now = self.clock.now()
        hits = self._hits.pop(key, None) or deque()
        self._hits[key] = hits  # most recently used last
        while hits and now - hits[0] >= WINDOW:
            hits.popleft()
        while len(self._hits) > self._max_actors:
            self._hits.popitem(last=False)
        if len(hits) >= self.per_minute:
            return False
        hits.append(now)
        return True

    def should_warn(self, key: str) -> bool:
        """Tell a limited actor once per window; answering every flooded message would feed the flood."""
        now = self.clock.now()
        last = self._warned.get(key)
        if last is not None and now - last < WINDOW:
            return False
        self._warned.pop(key, None)
        self._warned[key] = now  # ordered by the time they were told: the oldest goes first
        while len(self._warned) > self._max_actors:
            self._warned.popitem(last=False)
        return True
