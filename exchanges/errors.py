"""The project's one exception tree, and the venue family of it.

:class:`TradectlError` is the root of every error the project raises on purpose. It is defined in
:mod:`persistence.errors` — ``persistence`` is the lowest package: ``exchanges`` (the paper venue and the
Kraken nonces store their state through it), ``strategies``, ``core`` and ``bot`` all import it, and it
imports nothing of theirs — and offered here, where the rest of the project imports it from. Each family
has its own base — venue errors (:class:`ExchangeError`), configuration, secrets and vault, start-up,
database, strategy, chat command and alert delivery errors — and docs/developing.md draws the whole tree.
Foreign exceptions are translated at the edge and raised ``from`` the original.

Retry decisions follow two attributes every error carries: ``retryable`` (may the same call simply be
tried again?) and ``retry_after`` (seconds the other side asked us to wait, if it said). Venue adapters
raise these ``from`` the original exception: :class:`RateLimited` and :class:`TemporaryError` may be
retried (after ``retry_after``); the others must not be retried blindly.
"""

from __future__ import annotations

from persistence.errors import TradectlError as TradectlError  # the root, offered here


class ExchangeError(TradectlError):
    """Base class of everything a venue can say no with."""


class TemporaryError(ExchangeError):
    """Network failure, timeout, 5xx, venue busy: the call may be retried."""

    retryable = True


class RateLimited(TemporaryError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(ExchangeError):
    """Bad or missing credentials, or a key without the needed permission."""


class InvalidOrder(ExchangeError):
    """The venue refused the order as malformed: below minimum, bad step, unknown pair."""


class InsufficientFunds(InvalidOrder):
    pass


class UnknownPair(InvalidOrder):
    pass


class OrderNotFound(ExchangeError):
    pass


class MalformedResponse(TemporaryError):
    """The venue answered something we could not parse; logged in full, retried with care."""
