"""The start-up error: why the service, or one leadership term of it, cannot start.

One class, :class:`StartupError` (under :class:`~exchanges.errors.TradectlError`); the message tells the
operator what to change, and :attr:`StartupError.cause` says whose fault it is:

- ``settings``: a setting is wrong or missing (the message names the key) — ``tradectl check --live``
  reports it as a configuration error (exit 2);
- ``secrets``: the vault holds data that cannot be trusted (tampered, damaged) — a failure, not a setting;
- ``refused``: the trading core refuses to start (replay data of the wrong timeframe, a failed live
  preflight, a feed that cannot be read).

``tradectl run`` logs any of them without a traceback and exits 1.
"""

from __future__ import annotations

from enum import StrEnum

from exchanges.errors import TradectlError


class StartupCause(StrEnum):
    SETTINGS = "settings"
    SECRETS = "secrets"
    REFUSED = "refused"


class StartupError(TradectlError):
    """The service cannot start; the message tells the operator what to do, ``cause`` whose fault it is."""

    def __init__(self, message: str, cause: StartupCause = StartupCause.REFUSED) -> None:
        super().__init__(message)
        self.cause = cause

    @classmethod
    def settings(cls, message: str) -> StartupError:
        """A setting is wrong or missing; the message names the key."""
        return cls(message, StartupCause.SETTINGS)

    @classmethod
    def secrets(cls, message: str) -> StartupError:
        """The vault's data cannot be trusted."""
        return cls(message, StartupCause.SECRETS)
