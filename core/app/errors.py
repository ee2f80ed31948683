"""The start-up error family: why the service, or one leadership term of it, cannot start.

One root, :class:`StartupError` (under :class:`~exchanges.errors.TradectlError`); the message tells the
operator what to change. ``tradectl run`` logs it without a traceback and exits 1; ``tradectl check
--live`` reports a :class:`LiveConfigError` as a configuration error (exit 2).
"""

from __future__ import annotations

from exchanges.errors import TradectlError


class StartupError(TradectlError):
    """The service cannot start; the message tells the operator what to do."""


class StartupRefused(StartupError):
    """The trading core refuses to start (replay data of the wrong timeframe, a failed live preflight)."""


class LiveConfigError(StartupError):
    """The live venue cannot be built from the settings; the message names the key."""


class SecretsUnusable(StartupError):
    """The vault holds data that cannot be trusted (tampered, damaged): a failure, not a setting."""
