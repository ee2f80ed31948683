"""What the helper modules (fills, streams, preflight) need of the adapter, as a Protocol, so that
they do not import :mod:`exchanges.ccxt.adapter` (which imports them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from exchanges.base import Exchange, Market
from exchanges.clock import Clock
from exchanges.retry import Sleep

T = TypeVar("T")


class CcxtVenue(Exchange, Protocol):
    ex: Any  # the ccxt exchange instance
    exchange_id: str
    clock: Clock
    sleep: Sleep
    poll_interval_s: float
    max_clock_skew_s: float
    traded_pairs: set[str]

    async def q(self, make: Callable[[], Awaitable[T]], what: str) -> T: ...
    async def market(self, pair: str) -> Market: ...
    def cid_for(self, venue_id: str) -> str | None: ...
    def remember(self, client_order_id: str, venue_id: str) -> None: ...
    def timeframe(self, timeframe_s: int) -> str: ...
