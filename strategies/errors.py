"""Errors raised by the strategy layer.

Only configuration problems raise: a strategy that fails while evaluating candles is contained by
:mod:`strategies.runner` and reported as data, because one broken strategy must not stop a scan.
"""

from __future__ import annotations

from exchanges.errors import TradectlError


class StrategyError(TradectlError):
    """Base of every error the strategy layer raises on purpose."""


class StrategyConfigError(StrategyError, ValueError):
    """A strategy set-up that cannot be used as written.

    The message always names the offending key (strategy name, parameter, weight or module), so that
    a user reading it in chat or in a log knows which line of the configuration to fix.
    """
