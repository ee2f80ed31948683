"""The pairs the engine trades now: one :class:`TradedPairs`, built with the engine and handed at
construction to every part that reads them (the engine itself, the books, the queries, control, recovery,
the orders by hand and the pair changes).

``/pairs add`` and ``/pairs remove`` change it through :class:`~core.trading.pairs.PairManager`, its only
writer; every reader asks it at each use, so all of them see a change at once. Nobody keeps a copy of the
pairs, and the frozen ``trading`` settings each part was built with are never replaced: their
``trading.pairs`` stays what the engine started with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType


class TradedPairs:
    """The traded pairs, in the order they were added, and those of them being removed (*closing*: no new
    entries, their position is still managed until it is closed, then the pair is dropped)."""

    def __init__(self, pairs: Iterable[str]) -> None:
        self._active = tuple(pairs)
        self._closing: dict[str, str] = {}  # pair -> who asked for its removal

    # -- reading -----------------------------------------------------------------------------

    @property
    def active(self) -> tuple[str, ...]:
        """Every traded pair, closing ones included (their positions are still watched)."""
        return self._active

    @property
    def closing(self) -> Mapping[str, str]:
        """The pairs being removed, each with who asked (``"restart"``: found in the overlay at start)."""
        return MappingProxyType(self._closing)

    def __contains__(self, pair: object) -> bool:
        return pair in self._active

    def takes_entries(self, pair: str) -> bool:
        """Whether a new position may be opened in ``pair``: traded and not being removed."""
        return pair in self._active and pair not in self._closing

    # -- changes (core.trading.pairs.PairManager only) ----------------------------------------

    def add(self, pair: str) -> None:
        if pair not in self._active:
            self._active = (*self._active, pair)

    def drop(self, pair: str) -> None:
        self._active = tuple(p for p in self._active if p != pair)
        self._closing.pop(pair, None)

    def wind_down(self, pair: str, by: str) -> None:
        """No new entries in ``pair`` from now on; it is dropped once its position is closed."""
        self._closing[pair] = by

    def reopen(self, pair: str) -> None:
        """``pair`` takes entries again (added back while it was being removed)."""
        self._closing.pop(pair, None)

    def resume_closing(self, pairs: Iterable[str], by: str) -> None:
        """The closing pairs are ``pairs`` (those still traded), as a restart finds them in the overlay."""
        self._closing = {p: by for p in pairs if p in self._active}
