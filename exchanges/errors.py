"""One documented hierarchy for everything a venue can say no with.

Adapters raise these ``from`` the original exception. Retry decisions follow the type:
:class:`RateLimited` and :class:`TemporaryError` may be retried (after ``retry_after``);
the others must not be retried blindly.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base class; ``retryable`` says whether the same call may simply be tried again."""

    retryable = False


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
