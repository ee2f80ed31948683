"""Plumbing shared by the live venue adapters: retries, backoff, JSON with exact decimals,
timestamps, secrets and the translation of transport failures into :mod:`exchanges.errors`.

Nothing here knows a venue. Each adapter keeps its own error vocabulary and signing; what is
common is *how* a failure is classified and *when* a call may be repeated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from exchanges.clock import Clock, SystemClock  # noqa: F401  (re-exported for the adapters)
from exchanges.errors import (
    AuthError,
    ExchangeError,
    MalformedResponse,
    RateLimited,
    TemporaryError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with proportional jitter: ``initial_s * factor**attempt``, capped."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt))
        return base * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else base


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a call that is *safe to repeat* is tried. ``attempts`` counts the first try."""

    attempts: int = 4
    backoff: Backoff = Backoff()


NO_RETRY = RetryPolicy(attempts=1)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``call``, repeating it after :class:`TemporaryError` (honouring ``retry_after``).

    Only for calls whose repetition cannot do harm: queries, public data, cancels. Order
    submission goes through the adapters' own look-up-before-resubmit logic instead.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except TemporaryError as exc:
            attempt += 1
            if attempt >= policy.attempts:
                raise
            delay = policy.backoff.delay(attempt - 1)
            if isinstance(exc, RateLimited) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            log.warning("%s failed (%s: %s); retry %d/%d in %.2fs", what, type(exc).__name__, exc,
                        attempt, policy.attempts - 1, delay)
            await sleep(delay)


def reveal(secret: SecretStr | str) -> str:
    """The plain value of a credential, for signing only. Never log what this returns."""
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def stripped(secret: SecretStr | str | None) -> SecretStr | str | None:
    """A credential without surrounding whitespace (a pasted key often ends in a newline), same type."""
    if secret is None:
        return None
    if isinstance(secret, SecretStr):
        return SecretStr(secret.get_secret_value().strip())
    return secret.strip()


# -- parsing ---------------------------------------------------------------------------------


_DECODER = json.JSONDecoder(parse_float=Decimal)  # built once: json.loads(parse_float=...) builds one per call


def loads(body: str | bytes, *, what: str) -> Any:
    """JSON with every non-integer number as an exact ``Decimal`` (never a binary float)."""
    try:
        text = body.decode() if isinstance(body, (bytes, bytearray)) else body
        value, end = _DECODER.raw_decode(text)
        if text[end:].strip():
            raise ValueError("trailing data")
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"{what}: body is not JSON ({len(body)} bytes)") from exc


def dec(value: Any, *, what: str = "number") -> Decimal:
    """A venue number (string, int or Decimal) as ``Decimal``; anything else is malformed."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"{what}: expected a number, got {value!r}")
    if isinstance(value, float):  # only reachable when a caller parsed JSON itself
        value = repr(value)
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MalformedResponse(f"{what}: expected a number, got {value!r}") from exc
    if not result.is_finite():
        raise MalformedResponse(f"{what}: not a finite number: {value!r}")
    return result


def dec_or_zero(value: Any, *, what: str = "number") -> Decimal:
    return Decimal(0) if value in (None, "") else dec(value, what=what)


def utc_from_epoch(value: Any) -> datetime:
    """Seconds since the epoch (string, int or Decimal, fractions kept to the microsecond)."""
    seconds = dec(value, what="timestamp")
    return datetime.fromtimestamp(0, UTC) + _timedelta_seconds(seconds)


def _timedelta_seconds(seconds: Decimal) -> timedelta:
    whole = int(seconds)
    micros = int(((seconds - whole) * 1_000_000).to_integral_value())
    return timedelta(seconds=whole, microseconds=micros)


def utc_from_iso(text: Any) -> datetime:
    """RFC 3339 with ``Z`` and up to nanosecond fractions (Kraken and Coinbase both send those)."""
    if not isinstance(text, str) or not text:
        raise MalformedResponse(f"timestamp: expected RFC 3339 text, got {text!r}")
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        value = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedResponse(f"timestamp: cannot parse {text!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


# -- translation at the edge -------------------------------------------------------------------


def transport_error(exc: httpx.HTTPError, what: str) -> TemporaryError:
    """A failure below HTTP (timeout, refused, reset): the call may or may not have arrived."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    return TemporaryError(f"{what}: {kind} ({type(exc).__name__})")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def http_status_error(status: int, headers: Mapping[str, str], what: str, detail: str = "") -> ExchangeError | None:
    """The error an HTTP status means on its own, or None when the body must decide."""
    suffix = f": {detail}" if detail else ""
    if status == 429:
        return RateLimited(f"{what}: HTTP 429{suffix}", retry_after=retry_after_seconds(headers))
    if status >= 500:
        return TemporaryError(f"{what}: HTTP {status}{suffix}")
    if status in (401, 403):
        return AuthError(f"{what}: HTTP {status}{suffix}")
    return None


class HttpStatusError(Exception):
    """Carries a non-2xx status as the ``__cause__`` of the translated error."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body[:500]


class TokenBucket:
    """At most ``rate_per_s`` calls per second on average, bursts up to ``burst``; waits, never fails."""

    def __init__(self, rate_per_s: float, burst: float | None = None, *, sleep: Sleep = asyncio.sleep,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s)
        self._tokens = self.burst
        self._monotonic = monotonic or time.monotonic
        self._at = self._monotonic()
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)
