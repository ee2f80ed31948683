"""Kraken REST request signing and nonces.

``API-Sign`` = base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + urlencoded body))).
Kraken rejects any nonce not larger than the last one it saw for the key, so nonces come from one
:class:`Nonces` per key. :class:`NonceSource` is the in-memory one: microseconds of wall time, never
less than the last issued + 1 (enough for tests and one-off tools). The service uses
:class:`exchanges.kraken.nonces.StoredNonces`, which continues above a high-water mark kept in the
database, so a restart or a replica whose clock is behind never goes below what was used before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from exchanges.errors import AuthError


def sign(secret_b64: str, path: str, nonce: int | str, body: str) -> str:
    """The ``API-Sign`` header for one private request (``path`` like ``/0/private/AddOrder``)."""
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthError("Kraken API secret is not valid base64") from exc
    digest = hashlib.sha256(f"{nonce}{body}".encode()).digest()
    mac = hmac.new(key, path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def _wall_micros() -> int:
    return time.time_ns() // 1000


class Nonces(Protocol):
    """Where a client's nonces come from: strictly increasing for one key."""

    async def issue(self) -> int: ...

    async def resync(self) -> None:
        """Kraken refused a nonce as too low: make the next one higher than anyone else's."""


class NonceSource:
    """Strictly increasing nonces, safe across threads, tasks and (with ``persist``) restarts.

    ``last_issued`` seeds the sequence with what a previous process persisted. ``persist`` is
    called with every issued nonce, under the lock, before the nonce is used.
    """

    def __init__(
        self,
        *,
        last_issued: int = 0,
        persist: Callable[[int], None] | None = None,
        time_us: Callable[[], int] = _wall_micros,
    ) -> None:
        self._last = last_issued
        self._persist = persist
        self._time_us = time_us
        self._lock = threading.Lock()

    @property
    def last_issued(self) -> int:
        return self._last

    def next(self) -> int:
        with self._lock:
            nonce = max(self._time_us(), self._last + 1)
            self._last = nonce
            if self._persist is not None:
                self._persist(nonce)
            return nonce

    async def issue(self) -> int:
        return self.next()

    async def resync(self) -> None:
        """Nothing to learn in memory: the next nonce is already above every one this source issued."""


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_FREE_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,18}$")
_NAMESPACE = uuid.UUID("6f1d7a3e-2b8c-4e55-9a51-1c0de0b5a7e2")


def venue_client_id(client_order_id: str) -> str:
    """Our client order id in a form Kraken's ``cl_ord_id`` accepts.

    Kraken takes a UUID or up to 18 characters of free text; longer ids are mapped to a UUID
    derived from them, deterministically, so a restarted process finds the same order.
    """
    if _UUID.match(client_order_id) or _FREE_TEXT.match(client_order_id):
        return client_order_id
    return str(uuid.uuid5(_NAMESPACE, client_order_id))
