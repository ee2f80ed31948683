"""The root of the project's exception tree.

It lives in ``persistence``, the lowest of the five packages (it imports nothing of the others), so that
every package can derive its errors from it; the project imports it as ``exchanges.errors.TradectlError``,
whose module draws the venue family and names the others (docs/developing.md draws the whole tree).
"""

from __future__ import annotations


class TradectlError(Exception):
    """Root of the project's exceptions. ``retryable``: the same call may be tried again;
    ``retry_after``: how long the other side asked us to wait first (None: it did not say)."""

    retryable: bool = False
    retry_after: float | None = None
