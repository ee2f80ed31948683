"""Kraken's ``error`` strings (``"EOrder:Insufficient funds"``) mapped to :mod:`exchanges.errors`."""

from __future__ import annotations

from collections.abc import Sequence

from exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    RateLimited,
    TemporaryError,
    UnknownPair,
)


class KrakenApiError(ExchangeError):
    """The venue's own words, kept as the ``__cause__`` of the translated error (never raised itself)."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


_RATE = ("EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded", "EGeneral:Too many requests",
         "EGeneral:Temporary lockout", "EAPI:Temporary lockout")


class InvalidNonce(AuthError):
    """Kraken refused the nonce as not larger than the last it saw for the key (``EAPI:Invalid nonce``).

    The request was refused before anything happened, so it may be signed again with a higher
    nonce and sent once more, even an order."""


_AUTH = ("EAPI:Invalid key", "EAPI:Invalid signature", "EGeneral:Permission denied",
         "EAPI:Bad request", "EAPI:Feature disabled")
_TEMPORARY = ("EService:Unavailable", "EService:Busy", "EService:Timeout", "EService:Deadline elapsed",
              "EGeneral:Internal error", "EService:Internal error")
_NOT_FOUND = ("EOrder:Unknown order", "EQuery:Unknown order")
_UNKNOWN_PAIR = ("EQuery:Unknown asset pair", "EQuery:Unknown asset", "EGeneral:Unknown asset pair")
_FUNDS = ("EOrder:Insufficient funds", "EOrder:Insufficient margin", "EFunding:Insufficient funds")


def _starts(message: str, prefixes: Sequence[str]) -> bool:
    return any(message.startswith(p) for p in prefixes)


def translate(errors: Sequence[str], what: str, *, retry_after: float | None = None) -> ExchangeError:
    """One exception for a non-empty ``error`` list; the first recognised message decides."""
    text = f"{what}: {'; '.join(errors)}"
    for message in errors:
        if message.startswith("EAPI:Invalid nonce"):
            return InvalidNonce(text)
        if _starts(message, _RATE):
            return RateLimited(text, retry_after=retry_after)
        if _starts(message, _AUTH):
            return AuthError(text)
        if _starts(message, _FUNDS):
            return InsufficientFunds(text)
        if _starts(message, _UNKNOWN_PAIR):
            return UnknownPair(text)
        if _starts(message, _NOT_FOUND):
            return OrderNotFound(text)
        if _starts(message, _TEMPORARY):
            return TemporaryError(text)
        if message.startswith(("EOrder:", "EGeneral:Invalid arguments")):
            return InvalidOrder(text)
    return ExchangeError(text)
