"""Coinbase Advanced Trade REST transport: a JWT per request, a request-rate cap, retries for
calls safe to repeat, and translation of Coinbase's HTTP statuses and error bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
from aiolimiter import AsyncLimiter

from exchanges._http import HttpStatusError, RestClient, http_status_error, loads
from exchanges.coinbase.auth import CoinbaseSigner
from exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    UnknownPair,
)
from exchanges.retry import NO_RETRY, RetryPolicy, Sleep, with_retries

BROKERAGE = "/api/v3/brokerage"
Params = Mapping[str, Any] | Sequence[tuple[str, Any]]

# error_response.error / failure_reason values from POST /orders
_FUNDS = ("INSUFFICIENT_FUND", "INSUFFICIENT_FUNDS")
_PRODUCT = ("UNKNOWN_PRODUCT_ID", "INVALID_PRODUCT_ID", "PRODUCT_NOT_FOUND")


class CoinbaseOrderRefused(ExchangeError):
    """Coinbase's own ``error_response``, kept as the ``__cause__`` of the translated error."""

    def __init__(self, error_response: Mapping[str, Any]) -> None:
        super().__init__(str(dict(error_response))[:300])
        self.error_response = dict(error_response)  # never raised itself: the translated error is


def order_failure(error_response: Mapping[str, Any], what: str) -> ExchangeError:
    """The exception for a ``{"success": false, "error_response": {...}}`` order reply."""
    code = str(error_response.get("error") or error_response.get("new_order_failure_reason")
               or error_response.get("preview_failure_reason") or "UNKNOWN_FAILURE_REASON")
    message = str(error_response.get("message") or error_response.get("error_details") or "")
    text = f"{what}: {code}{': ' + message if message else ''}"
    if any(c in code for c in _FUNDS):
        return InsufficientFunds(text)
    if any(c in code for c in _PRODUCT):
        return UnknownPair(text)
    return InvalidOrder(text)


class CoinbaseRest(RestClient):
    """Requests are paced by a leaky bucket (aiolimiter) of ``rate_per_s`` per second with bursts of
    as many: Coinbase counts requests per second per key and answers 429 above its limit."""

    def __init__(self, *, base_url: str, signer: CoinbaseSigner | None, retry: RetryPolicy,
                 timeout_s: float = 10.0, rate_per_s: float = 25.0, sleep: Sleep = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, transport=transport)
        self.signer = signer
        self.retry = retry
        self._sleep = sleep
        burst = max(1.0, rate_per_s)
        self._limiter = AsyncLimiter(burst, time_period=burst / rate_per_s)

    def url(self, path: str, params: Params | None = None) -> str:
        query = f"?{urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))}" if params else ""
        return f"{self.base_url}{BROKERAGE}{path}{query}"

    def headers(self, method: str, url: str, *, auth: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            if self.signer is None:
                raise AuthError(f"Coinbase {method} {url.split('?')[0]}: no API key configured")
            headers["Authorization"] = f"Bearer {self.signer.rest_jwt(method, url)}"
        return headers

    async def request(self, method: str, path: str, *, params: Params | None = None, body: Any = None,
                      retry: bool, auth: bool = True, not_found: type[ExchangeError] = OrderNotFound) -> Any:
        """One call; ``retry=True`` only where repeating it cannot do harm."""
        what = f"Coinbase {method} {path}"
        url = self.url(path, params)

        async def once() -> Any:
            await self._limiter.acquire()
            headers = self.headers(method, url, auth=auth)
            response = await self.send(method, url, what, headers=headers, json=body if body is not None else None)
            return self._decode(response, what, not_found)

        return await with_retries(once, self.retry if retry else NO_RETRY, what=what, sleep=self._sleep)

    @staticmethod
    def _decode(response: httpx.Response, what: str, not_found: type[ExchangeError]) -> Any:
        status = response.status_code
        if status >= 400:
            cause = HttpStatusError(status, response.text)
            detail = _error_detail(response)
            error = http_status_error(status, response.headers, what, detail)
            if error is None:
                lowered = detail.lower()
                if status == 404 or "not_found" in lowered or "not found" in lowered:
                    error = not_found(f"{what}: {detail or 'not found'}")
                elif "insufficient" in lowered:
                    error = InsufficientFunds(f"{what}: {detail}")
                else:
                    error = InvalidOrder(f"{what}: HTTP {status}: {detail}")
            raise error from cause
        payload = loads(response.content, what=what)
        if not isinstance(payload, dict):
            raise MalformedResponse(f"{what}: expected a JSON object")
        return payload


def _error_detail(response: httpx.Response) -> str:
    """Coinbase's ``{"error": ..., "message": ...}`` body, or the start of whatever came back."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:120]
    if isinstance(payload, dict):
        parts = [str(payload[k]) for k in ("error", "message", "error_details") if payload.get(k)]
        return ": ".join(dict.fromkeys(parts))[:300]
    return str(payload)[:120]
