"""Plumbing shared by the live venue adapters: the REST client's life cycle, JSON with exact
decimals, timestamps, secrets and the translation of transport failures into :mod:`exchanges.errors`.

Nothing here knows a venue. Each adapter keeps its own error vocabulary and signing; what is
common is *how* a failure is classified. *When* a call may be repeated is :mod:`exchanges.retry`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from exchanges.clock import SystemClock as SystemClock  # re-exported: benchmarks/bench_ws_ingest.py imports it here
from exchanges.errors import (
    AuthError,
    ExchangeError,
    MalformedResponse,
    RateLimited,
    TemporaryError,
)
from exchanges.retry import retry_after_seconds

log = logging.getLogger(__name__)


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


class HttpStatusError(ExchangeError):
    """Carries a non-2xx status as the ``__cause__`` of the translated error (never raised itself)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body[:500]


class RestClient:
    """One ``httpx.AsyncClient`` per venue: opened on first use (or by ``open``), closed by ``close``;
    both safe to call twice. ``send`` translates failures below HTTP into :class:`TemporaryError`."""

    def __init__(self, *, base_url: str, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport,
                                             headers={"User-Agent": "tradectl"})

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, verb: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            await self.open()
        assert self._client is not None
        try:
            return await self._client.request(verb, url, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, what) from exc


# -- observation -------------------------------------------------------------------------------


class RequestObserver(Protocol):
    """Told of every HTTP exchange with a venue (the metrics, when enabled; this package never imports
    them). ``host`` is the configured URL's host, ``outcome`` one of :func:`request_outcome`'s few words."""

    def venue_request(self, host: str, seconds: float, outcome: str) -> None: ...


def request_outcome(status: int | None, exc: BaseException | None = None) -> str:
    """A bounded word for how one HTTP exchange ended: ``ok``, ``http_429``, ``http_4xx``, ``http_5xx``,
    ``timeout`` or ``connection_error`` (never the venue's own message, which is free text)."""
    if exc is not None:
        return "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
    if status is None or status < 400:
        return "ok"
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


class ObservedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that times each request through ``inner`` and tells ``observer`` how it ended.

    Handed to a venue adapter by the composition root (every adapter takes ``transport``), so the REST
    clients need no change to be measured. A failing observer is logged, never raised into the request."""

    def __init__(self, observer: RequestObserver, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._observer = observer
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.HTTPError as exc:
            self._tell(request, started, request_outcome(None, exc))
            raise
        self._tell(request, started, request_outcome(response.status_code))
        return response

    def _tell(self, request: httpx.Request, started: float, outcome: str) -> None:
        try:
            self._observer.venue_request(request.url.host, time.perf_counter() - started, outcome)
        except Exception:  # measuring never fails a request
            log.warning("could not observe a venue request", exc_info=True)

    async def aclose(self) -> None:
        await self._inner.aclose()
