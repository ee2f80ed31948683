"""A local mirror of Kraken's per-key API counter, so we slow down before Kraken locks us out.

Kraken adds to a counter per call (2 for ledger and trade-history queries, 1 for most others,
nothing for placing and cancelling orders, which have their own per-pair limits) and lets it decay
at a rate that depends on the account tier. Going over the tier's maximum earns
``EAPI:Rate limit exceeded`` and, repeated, a temporary lockout.

This is a leaky bucket, but not aiolimiter's (which paces Coinbase): Kraken's answer "over the limit"
must *fill* our mirror at once (:meth:`DecayCounter.saturate`) and tell how long one call has to wait
(the ``retry_after`` of the :class:`~exchanges.errors.RateLimited` we raise), which ``AsyncLimiter``
offers only through its private ``_level``; and ``AsyncLimiter`` reads the event loop's clock, so the
tier arithmetic could no longer be tested with an injected clock (tests/exchanges/kraken).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tier:
    max_count: float
    decay_per_s: float


TIERS: dict[str, Tier] = {
    "starter": Tier(max_count=15, decay_per_s=0.33),
    "intermediate": Tier(max_count=20, decay_per_s=0.5),
    "pro": Tier(max_count=20, decay_per_s=1.0),
}

HEAVY_CALLS = frozenset({"TradesHistory", "QueryTrades", "Ledgers", "QueryLedgers"})
FREE_CALLS = frozenset({"AddOrder", "AddOrderBatch", "CancelOrder", "CancelAll", "CancelAllOrdersAfter",
                        "CancelOrderBatch", "EditOrder", "AmendOrder"})


def call_cost(method: str) -> int:
    if method in FREE_CALLS:
        return 0
    return 2 if method in HEAVY_CALLS else 1


class DecayCounter:
    """Waits (never fails) until a call of the given cost fits under the tier's maximum."""

    def __init__(
        self,
        tier: Tier,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tier = tier
        self._monotonic = monotonic
        self._sleep = sleep
        self._count = 0.0
        self._at = monotonic()
        self._lock = asyncio.Lock()

    @property
    def count(self) -> float:
        self._decay()
        return self._count

    def _decay(self) -> None:
        now = self._monotonic()
        self._count = max(0.0, self._count - (now - self._at) * self.tier.decay_per_s)
        self._at = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` fits (0 when it fits now)."""
        self._decay()
        excess = self._count + cost - self.tier.max_count
        return max(0.0, excess / self.tier.decay_per_s)

    async def acquire(self, cost: float) -> None:
        if cost <= 0:
            return
        async with self._lock:
            while (wait := self.wait_for(cost)) > 0:
                await self._sleep(wait)
            self._count += cost

    def saturate(self) -> float:
        """Kraken said we are over the limit: assume the counter is full. Returns the wait for one call."""
        self._decay()
        self._count = max(self._count, self.tier.max_count)
        return self.wait_for(1)
