"""The project's one vocabulary for waiting and trying again: backoff settings, retry policies built
on tenacity, and the one ``Retry-After`` parser.

Retry decisions follow the exception: a :class:`~exchanges.errors.TradectlError` whose ``retryable``
is true may be tried again, after at least its ``retry_after`` when the other side said how long.
Nothing else is retried. ``bot/`` uses :func:`retry_after_seconds` / :func:`parse_retry_after` for
the chat platforms' 429 answers, so every "slow down" is read the same way.

What is *not* here: order submission is retried only through :func:`submit_with_lookup`, which
looks the order up after every ambiguous failure (a lost answer is not a lost order).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from exchanges.errors import RateLimited, TemporaryError, TradectlError

if TYPE_CHECKING:  # tenacity is imported by the first retrying(): the embedded default never retries anything
    from tenacity import AsyncRetrying, RetryCallState

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "WS_RECONNECT",
    "Backoff",
    "RetryObserver",
    "RetryPolicy",
    "Sleep",
    "parse_retry_after",
    "retry_after_seconds",
    "submit_with_lookup",
    "with_retries",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")
Sleep = Callable[[float], Awaitable[None]]


# -- Retry-After ------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from one ``Retry-After`` value (RFC 9110): delta-seconds (fractions allowed, as
    Discord sends them) or an HTTP-date. ``None`` when absent or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


def retry_after_seconds(headers: Mapping[str, object], *names: str, now: datetime | None = None) -> float | None:
    """The first readable wait among ``names`` (default ``Retry-After``) in response headers.

    Header names match case-insensitively whether or not the mapping does (httpx's does, a plain
    dict from an SDK may not); a list value (some SDKs keep repeated headers so) counts by its
    first element."""
    wanted = [n.lower() for n in (names or ("Retry-After",))]
    lowered = {str(k).lower(): v for k, v in headers.items()}
    for name in wanted:
        raw = lowered.get(name)
        if isinstance(raw, (list, tuple)):
            raw = raw[0] if raw else None
        seconds = parse_retry_after(None if raw is None else str(raw), now=now)
        if seconds is not None:
            return seconds
    return None


# -- backoff and retry policies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with proportional jitter: ``initial_s * factor**attempt``, capped at ``max_s``,
    then moved by up to ±``jitter`` of itself (so many clients do not retry in step)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure, counting from 0."""
        # The exponent is capped: a stream that has been failing for hours must not overflow a float.
        base = min(self.max_s, self.initial_s * self.factor ** min(max(0, attempt), 64))
        return base * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else base


class _wait_backoff_or_retry_after:
    """tenacity wait (any callable of the retry state): the backoff for this attempt, or longer when the error
    carries ``retry_after``."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.backoff.delay(retry_state.attempt_number - 1)
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        if isinstance(exc, TradectlError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        return delay


class RetryObserver(Protocol):
    """Told before each wait for a retry: the error's class name (a bounded label from the one hierarchy),
    the wait, and whether the other side asked to slow down (the metrics, when enabled)."""

    def venue_retry(self, error: str, wait_s: float, rate_limited: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a call that is *safe to repeat* is tried. ``attempts`` counts the first try; ``observer``
    hears of every retry (it does not take part in equality: two policies that retry alike are equal)."""

    attempts: int = 4
    backoff: Backoff = Backoff()
    observer: RetryObserver | None = field(default=None, compare=False, repr=False)

    def retrying(self, *, what: str, sleep: Sleep = asyncio.sleep,
                 retry_on: Callable[[BaseException], bool] | None = None) -> AsyncRetrying:
        """A tenacity controller for this policy: retries what ``retry_on`` accepts (default: a
        retryable :class:`TradectlError`), re-raises the last error unchanged when attempts run out."""
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning("%s failed (%s: %s); retry %d/%d in %.2fs", what, type(exc).__name__, exc,
                        state.attempt_number, self.attempts - 1, delay)
            if self.observer is not None:
                limited = isinstance(exc, RateLimited) or bool(isinstance(exc, TradectlError) and exc.retry_after)
                try:
                    self.observer.venue_retry(type(exc).__name__, delay, limited)
                except Exception:  # counting never stops a retry
                    log.warning("could not count a retry", exc_info=True)

        return AsyncRetrying(stop=stop_after_attempt(max(1, self.attempts)),
                             wait=_wait_backoff_or_retry_after(self.backoff),
                             retry=retry_if_exception(retry_on or _retryable), sleep=sleep,
                             before_sleep=log_retry, reraise=True)


NO_RETRY = RetryPolicy(attempts=1)
DEFAULT_RETRY = RetryPolicy()
WS_RECONNECT = Backoff(initial_s=1.0, max_s=60.0)  # the live venues' WebSocket reconnects


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TradectlError) and exc.retryable


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, what: str,
                       sleep: Sleep = asyncio.sleep) -> T:
    """Run ``call``, repeating it after a retryable error (honouring ``retry_after``).

    Only for calls whose repetition cannot do harm: queries, public data, cancels. Order
    submission goes through :func:`submit_with_lookup` instead.
    """
    return await policy.retrying(what=what, sleep=sleep)(call)


async def submit_with_lookup(submit: Callable[[], Awaitable[T]], look_up: Callable[[], Awaitable[U | None]],
                             policy: RetryPolicy, *, what: str, sleep: Sleep = asyncio.sleep) -> T | U:
    """Submit something that must not happen twice (an order), trying again only when it surely did
    not happen: after an ambiguous failure (:class:`TemporaryError`, the answer may be lost, not the
    order), ``look_up`` searches the venue first; what it finds is the result, and only when it finds
    nothing is the submit repeated (after the policy's backoff). An error from ``look_up`` itself is
    not retried: without knowing, resubmitting could place the order twice.
    """
    ambiguous: BaseException | None = None

    async def once() -> T | U:
        nonlocal ambiguous
        try:
            return await submit()
        except TemporaryError as exc:
            log.warning("%s failed ambiguously (%s); looking it up", what, exc)
            ambiguous = exc
            found = await look_up()
            if found is not None:
                return found
            raise

    return await policy.retrying(what=what, sleep=sleep, retry_on=lambda exc: exc is ambiguous)(once)
