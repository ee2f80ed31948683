"""Coinbase's public market data without API keys: what paper trading on live Coinbase prices reads.

Advanced Trade serves products, candles, the ticker and the book twice: under the account's own
(signed) paths and, for anyone, under ``/market/...``. :func:`public_coinbase` builds the ordinary
:class:`~exchanges.coinbase.CoinbaseExchange` with a REST client that sends those market reads to the
public paths unsigned, and the WebSocket market channels (``ticker``, ``candles``, ``heartbeats``) need
no JWT. Everything that touches an account (balances, orders, fills, the user channel) still asks for a
key and fails with :class:`~exchanges.errors.AuthError` without one: this is a feed, never a venue
to trade on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from exchanges.coinbase.adapter import DEFAULT_REST_URL, DEFAULT_WS_URL, CoinbaseExchange
from exchanges.coinbase.rest import CoinbaseRest, Params
from exchanges.errors import ExchangeError, OrderNotFound
from exchanges.retry import DEFAULT_RETRY

_PUBLIC_READS = ("/products", "/product_book")


class PublicCoinbaseRest(CoinbaseRest):
    """Market reads go to ``/market/<path>`` without a signature; everything else is unchanged."""

    async def request(self, method: str, path: str, *, params: Params | None = None, body: Any = None,
                      retry: bool, auth: bool = True, not_found: type[ExchangeError] = OrderNotFound) -> Any:
        if method == "GET" and path.startswith(_PUBLIC_READS):
            return await super().request(method, "/market" + path, params=params, body=body, retry=retry,
                                         auth=False, not_found=not_found)
        return await super().request(method, path, params=params, body=body, retry=retry, auth=auth,
                                     not_found=not_found)


def public_coinbase(*, rest_url: str = DEFAULT_REST_URL, ws_url: str = DEFAULT_WS_URL,
                    **options: Any) -> CoinbaseExchange:
    """A keyless :class:`CoinbaseExchange` for markets, candles and the market WebSocket only.

    ``options`` are the adapter's own keyword arguments (clock, retry, reconnect backoff, timeouts).
    """
    venue = CoinbaseExchange(None, None, rest_url=rest_url, ws_url=ws_url, **options)
    venue.rest = PublicCoinbaseRest(base_url=rest_url, signer=None, retry=options.get("retry", DEFAULT_RETRY),
                                    timeout_s=options.get("request_timeout_s", 10.0),
                                    rate_per_s=options.get("rate_per_s", 25.0),
                                    sleep=options.get("sleep", asyncio.sleep), transport=options.get("transport"))
    return venue
