"""ccxt's exception tree translated into :mod:`exchanges.errors`, raised ``from`` the original.

ccxt's classes (ccxt 4.5) and what they become here, most specific first, because several ccxt classes
inherit from ones that mean something else to us (``OrderNotFound`` is an ``InvalidOrder``,
``BadSymbol`` a ``BadRequest``, ``PermissionDenied`` an ``AuthenticationError``)::

    RateLimitExceeded, DDoSProtection        -> RateLimited      (retryable; Retry-After when the venue sent one)
    RequestTimeout                           -> TemporaryError   (ambiguous: the order may exist; looked up)
    ExchangeNotAvailable, OnMaintenance,
    InvalidNonce, other NetworkError         -> TemporaryError   (retryable)
    BadResponse, NullResponse                -> MalformedResponse
    AuthenticationError, PermissionDenied,
    AccountSuspended, AccountNotEnabled      -> AuthError
    InsufficientFunds                        -> InsufficientFunds
    OrderNotFound                            -> OrderNotFound
    BadSymbol                                -> UnknownPair      (an InvalidOrder)
    InvalidOrder (and its other subclasses)  -> InvalidOrder
    BadRequest, ArgumentsRequired,
    NotSupported, other ExchangeError        -> ExchangeError    (not retried)
    anything else ccxt raises                -> ExchangeError

Retry decisions then follow the type (:mod:`exchanges.retry`): only ``RateLimited`` and
``TemporaryError`` are tried again, and order submission only after a look-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from exchanges.ccxt._lib import ccxt
from exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    TemporaryError,
    UnknownPair,
)
from exchanges.retry import retry_after_seconds

T = TypeVar("T")

# (ccxt class name, our class), checked in order: the first match wins.
_MAP: tuple[tuple[str, type[ExchangeError]], ...] = (
    ("RateLimitExceeded", RateLimited),
    ("DDoSProtection", RateLimited),
    ("NetworkError", TemporaryError),           # RequestTimeout, ExchangeNotAvailable, OnMaintenance, InvalidNonce
    ("BadResponse", MalformedResponse),         # NullResponse too
    ("AuthenticationError", AuthError),         # PermissionDenied, AccountSuspended, AccountNotEnabled
    ("InsufficientFunds", InsufficientFunds),
    ("OrderNotFound", OrderNotFound),
    ("BadSymbol", UnknownPair),
    ("InvalidOrder", InvalidOrder),
)


def translate(exc: BaseException, *, headers: Mapping[str, object] | None = None) -> ExchangeError:
    """Our error for a ccxt exception (not raised: the caller raises it ``from exc``).

    ``headers`` are the last response's headers (``exchange.last_response_headers``), read for a
    ``Retry-After`` on rate limits; ccxt's exceptions do not carry it themselves."""
    message = str(exc) or type(exc).__name__
    for name, ours in _MAP:
        if isinstance(exc, getattr(ccxt, name)):
            if ours is RateLimited:
                return RateLimited(message, retry_after_seconds(headers or {}))
            return ours(message)
    return ExchangeError(message)


async def call(awaitable: Awaitable[T], exchange: Any = None) -> T:
    """Await one ccxt call, translating what it raises (non-ccxt exceptions pass unchanged)."""
    try:
        return await awaitable
    except ccxt.BaseError as exc:
        headers = getattr(exchange, "last_response_headers", None) if exchange is not None else None
        raise translate(exc, headers=headers if isinstance(headers, Mapping) else None) from exc
