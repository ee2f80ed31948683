"""Kraken REST transport: request building, signing, the API counter, and error translation.

Knows HTTP and Kraken's envelope (``{"error": [...], "result": ...}``), not trading. Private
calls are serialised under one lock from nonce to response, so nonces reach Kraken in the order
they were issued even when callers run concurrently. A call Kraken refuses with
``EAPI:Invalid nonce`` (another process used the key with a higher nonce) resyncs the nonce source
and is signed and sent once more; Kraken refused it before doing anything, so this is safe even for
an order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from exchanges._http import HttpStatusError, RestClient, http_status_error, loads, reveal
from exchanges.errors import AuthError, ExchangeError, MalformedResponse, RateLimited
from exchanges.kraken._errors import InvalidNonce, KrakenApiError, translate
from exchanges.kraken.auth import Nonces, sign
from exchanges.kraken.ratelimit import DecayCounter, call_cost
from exchanges.retry import NO_RETRY, RetryPolicy, Sleep, with_retries

log = logging.getLogger(__name__)

PUBLIC = "/0/public/"
PRIVATE = "/0/private/"


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request as it would go on the wire (headers include the signature; never log them)."""

    method: str
    url: str
    path: str
    body: str
    headers: dict[str, str] = field(repr=False)


class KrakenRest(RestClient):
    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | str | None,
        api_secret: SecretStr | str | None,
        nonces: Nonces,
        counter: DecayCounter,
        retry: RetryPolicy,
        timeout_s: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, transport=transport)
        self._key = api_key
        self._secret = api_secret
        self.nonces = nonces
        self.counter = counter
        self.retry = retry
        self._sleep = sleep
        self._private_lock = asyncio.Lock()

    @property
    def has_credentials(self) -> bool:
        return bool(self._key) and bool(self._secret)

    # -- request builders (pure, tested against recorded requests) --------------------------------

    def public_url(self, method: str, params: Mapping[str, Any] | None = None) -> str:
        query = f"?{urlencode(list(params.items()))}" if params else ""
        return f"{self.base_url}{PUBLIC}{method}{query}"

    def prepare_private(self, method: str, data: Mapping[str, Any] | None, nonce: int) -> PreparedRequest:
        if not self.has_credentials:
            raise AuthError(f"Kraken {method}: no API key configured")
        assert self._key is not None and self._secret is not None
        path = f"{PRIVATE}{method}"
        body = urlencode([("nonce", nonce), *(data or {}).items()])
        headers = {
            "API-Key": reveal(self._key),
            "API-Sign": sign(reveal(self._secret), path, nonce, body),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        }
        return PreparedRequest("POST", f"{self.base_url}{path}", path, body, headers)

    # -- calls --------------------------------------------------------------------------------

    async def public(self, method: str, params: Mapping[str, Any] | None = None, *,
                     retry: bool = True) -> Any:
        what = f"Kraken {method}"
        url = self.public_url(method, params)

        async def once() -> Any:
            return self._decode(await self.send("GET", url, what), what)

        return await with_retries(once, self.retry if retry else NO_RETRY, what=what, sleep=self._sleep)

    async def private(self, method: str, data: Mapping[str, Any] | None = None, *,
                      retry: bool) -> Any:
        """A signed call. ``retry=False`` for anything that must not happen twice (AddOrder)."""
        what = f"Kraken {method}"

        async def signed() -> Any:
            if not self.has_credentials:
                raise AuthError(f"{what}: no API key configured")
            request = self.prepare_private(method, data, await self.nonces.issue())
            response = await self.send("POST", request.url, what, content=request.body, headers=request.headers)
            return self._decode(response, what)

        async def once() -> Any:
            await self.counter.acquire(call_cost(method))
            async with self._private_lock:
                try:
                    return await signed()
                except InvalidNonce:
                    log.warning("%s: Kraken refused the nonce (the key was used with a higher one elsewhere); "
                                "resyncing and sending it once more", what)
                    await self.nonces.resync()
                    await self.counter.acquire(call_cost(method))
                    return await signed()

        return await with_retries(once, self.retry if retry else NO_RETRY, what=what, sleep=self._sleep)

    def _decode(self, response: httpx.Response, what: str) -> Any:
        status = response.status_code
        if status >= 400:
            cause = HttpStatusError(status, response.text)
            error = http_status_error(status, response.headers, what)
            if error is not None:
                if isinstance(error, RateLimited):
                    self.counter.saturate()
                raise error from cause
        payload = loads(response.content, what=what)
        if not isinstance(payload, dict):
            raise MalformedResponse(f"{what}: expected a JSON object")
        errors = payload.get("error") or []
        if not isinstance(errors, list):
            raise MalformedResponse(f"{what}: 'error' is not a list")
        if errors:
            wait = None
            if any("Rate limit" in e or "lockout" in e for e in errors):
                wait = self.counter.saturate()
            raise translate([str(e) for e in errors], what, retry_after=wait) from KrakenApiError(errors)
        if status >= 400:
            raise ExchangeError(f"{what}: HTTP {status}") from HttpStatusError(status, response.text)
        if "result" not in payload:
            raise MalformedResponse(f"{what}: no 'result' in the reply")
        return payload["result"]
