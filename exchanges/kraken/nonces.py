"""Kraken nonces that survive restarts and are shared by replicas: a high-water mark in the database.

Kraken refuses any nonce not larger than the last one it accepted for the API key. Wall-clock
microseconds alone break that as soon as a process restarts with its clock behind (NTP stepped it,
or another replica's clock runs ahead): every private call then fails with ``EAPI:Invalid nonce``.

:class:`StoredNonces` therefore reserves *blocks* of nonces in the ``api_nonces`` table, one row per
key (keyed by a SHA-256 of the venue and the key; the key itself is never stored), with one atomic
upsert: ``high_water = GREATEST(high_water, floor) + block``. The block is ``(old high-water or
floor, new high-water]``; nonces are handed out from it in memory, each ``max(now in µs, last + 1)``,
so the database is written about once per ``block_us`` of wall time. A restart or another replica
reserves above every block reserved before, whatever its clock says, so it never issues a nonce
lower than one already reserved.

Two processes using the key at the same moment (a takeover in progress, ``tradectl check --live``
while the service runs) can still overtake each other: Kraken then refuses the older block's nonce,
and :meth:`resync` reserves a fresh block above both (the REST client retries such a call once).

If the database cannot be reached, nonces continue in memory above the last one issued (a warning
is logged once per outage): a nonce that turns out too low is only refused by Kraken, never
misused, and the next reservation lifts the high-water mark above everything issued meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func

from persistence.db import Database
from persistence.models.ops import ApiNonceRow
from persistence.upsert import dialect_insert, table_of

log = logging.getLogger(__name__)

BLOCK_US = 10_000_000  # ten seconds of microseconds per reservation
DB_TIMEOUT_S = 5.0


def _wall_micros() -> int:
    return time.time_ns() // 1000


def key_hash(venue: str, api_key: str) -> str:
    """What identifies a key's row: never the key, only a SHA-256 of it (and the venue)."""
    return hashlib.sha256(f"{venue}\n{api_key}".encode()).hexdigest()


class StoredNonces:
    """Strictly increasing nonces for one API key, continuing above the database's high-water mark."""

    def __init__(
        self,
        db: Database,
        api_key: str,
        *,
        venue: str = "kraken",
        block_us: int = BLOCK_US,
        time_us: Callable[[], int] = _wall_micros,
        timeout_s: float = DB_TIMEOUT_S,
        retry_after_s: float = DB_TIMEOUT_S,
    ) -> None:
        if block_us < 1:
            raise ValueError("block_us must be positive")
        self.db = db
        self.venue = venue
        self.key_hash = key_hash(venue, api_key)
        self.block_us = block_us
        self._time_us = time_us
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._last = 0  # last nonce issued by this process
        self._high = 0  # end (inclusive) of the block reserved by this process
        self._lock = asyncio.Lock()
        self._degraded = False
        self._retry_at = 0.0  # after a failed reservation, memory only until then
        self.reservations = 0

    @property
    def last_issued(self) -> int:
        return self._last

    async def issue(self) -> int:
        async with self._lock:
            nonce = max(self._time_us(), self._last + 1)
            if nonce > self._high:
                nonce = await self._reserve(nonce)
            self._last = nonce
            return nonce

    async def resync(self) -> None:
        """Kraken refused a nonce: someone used the key with a higher one. The next nonce comes from
        a new block, above every block reserved so far."""
        async with self._lock:
            self._high = 0
            self._retry_at = 0.0

    async def _reserve(self, floor: int) -> int:
        """Reserve a block at or above ``floor``; returns the first nonce of it."""
        if time.monotonic() < self._retry_at:
            self._high = floor  # the database was away a moment ago: stay in memory for now
            return floor
        try:
            high = await asyncio.wait_for(self._advance(floor), self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - keep trading on memory; Kraken refuses a nonce too low, no more
            if not self._degraded:
                log.warning("could not reserve Kraken nonces in the database (%s: %s); continuing in memory "
                            "above the last one issued", type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")
            self._degraded = True
            self._retry_at = time.monotonic() + self._retry_after_s
            self._high = floor
            return floor
        if self._degraded:
            log.info("Kraken nonces are reserved in the database again")
        self._degraded = False
        self.reservations += 1
        self._high = high
        return high - self.block_us + 1  # = max(floor, previous high-water + 1)

    async def _advance(self, floor: int) -> int:
        """One atomic upsert: the new high-water mark, at least ``floor - 1 + block`` and above every
        block reserved before."""
        table = table_of(ApiNonceRow)
        pg = not self.db.is_sqlite
        insert = dialect_insert("postgresql" if pg else "sqlite", table)
        greatest = func.greatest if pg else func.max  # SQLite's two-argument max() is scalar
        base = floor - 1
        row = insert.values(key_hash=self.key_hash, venue=self.venue, high_water=base + self.block_us,
                            updated_at=datetime.now(UTC))
        stmt = row.on_conflict_do_update(
            index_elements=["key_hash"],
            set_={"high_water": greatest(table.c.high_water, base) + self.block_us,
                  "updated_at": row.excluded.updated_at},
        ).returning(table.c.high_water)
        async with self.db.begin() as conn:
            return int((await conn.execute(stmt)).scalar_one())
