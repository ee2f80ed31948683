"""ccxt's own Kraken and Coinbase classes, driven by :class:`CcxtExchange`, against the project's fake
Kraken and Coinbase servers: one implementation of each venue's protocol (ccxt's signing, parsing and
error mapping) checked against another (the fakes, built from recorded real payloads)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from exchanges.ccxt import CcxtExchange
from exchanges.retry import Backoff, RetryPolicy
from tests.exchanges.fakes import FakeCoinbase, FakeKraken, MarketController

FAST = {"retry": RetryPolicy(attempts=3, backoff=Backoff(initial_s=0.01, max_s=0.05, jitter=0)),
        "request_timeout_s": 1.0, "rate_limit_ms": 1, "websocket": False, "poll_interval_s": 0.05}


def ccxt_for(fake: FakeKraken | FakeCoinbase, **kwargs: Any) -> CcxtExchange:
    if isinstance(fake, FakeKraken):
        return CcxtExchange("kraken", fake.api_key, fake.api_secret, rest_url=fake.rest_url, **{**FAST, **kwargs})
    return CcxtExchange("coinbase", fake.key_name, fake.private_key_pem, rest_url=fake.rest_url,
                        **{**FAST, **kwargs})


@asynccontextmanager
async def ccxt_venue(fake: FakeKraken | FakeCoinbase, *, ws_url_from_fake: bool = False,
                     **kwargs: Any) -> AsyncIterator[tuple[CcxtExchange, MarketController]]:
    """A started adapter on ``fake``; ``ws_url_from_fake`` points ccxt.pro's WebSocket URLs at the fake."""
    async with fake:
        if ws_url_from_fake:
            kwargs["ws_url"] = fake.ws_url
        venue = ccxt_for(fake, **kwargs)
        await venue.start()
        try:
            yield venue, MarketController(fake)
        finally:
            await venue.stop()


def ccxt_kraken_venue() -> Any:
    return ccxt_venue(FakeKraken())


def ccxt_coinbase_venue() -> Any:
    return ccxt_venue(FakeCoinbase())
