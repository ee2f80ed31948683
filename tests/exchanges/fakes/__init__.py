"""Fake Kraken and Coinbase venues (real HTTP + WebSocket servers on loopback) and harnesses that
pair each with its real adapter, for the venue-agnostic contract suite and the adapters' own tests.

    async with kraken_venue() as (venue, market):
        market.set_balance("USD", Decimal("10000"))
        await market.set_price("BTC/USD", Decimal("30000"))
        order = await venue.place_order(...)

``kraken_venue()`` / ``coinbase_venue()`` may also be awaited first (``async with await ...``).
The adapter is started on entry and stopped on exit; keyword arguments go to its constructor.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchanges.coinbase import CoinbaseExchange
from exchanges.kraken import KrakenExchange, Tier
from exchanges.retry import Backoff, RetryPolicy
from tests.exchanges.fakes.coinbase import FakeCoinbase
from tests.exchanges.fakes.kraken import FakeKraken

__all__ = ["UNTHROTTLED", "FakeCoinbase", "FakeKraken", "MarketController", "coinbase_venue",
           "fast_settings", "kraken_venue"]


def fast_settings() -> dict[str, Any]:
    """Constructor arguments that keep retries, timeouts and reconnects short on loopback."""
    return {
        "retry": RetryPolicy(attempts=3, backoff=Backoff(initial_s=0.01, max_s=0.05, jitter=0)),
        "ws_backoff": Backoff(initial_s=0.02, max_s=0.2, jitter=0),
        "ws_idle_timeout_s": 2.0,
        "request_timeout_s": 1.0,
    }


@dataclass
class MarketController:
    """Venue-agnostic levers on a fake venue, in our own names (``BTC/USD``, ``USD``)."""

    fake: FakeKraken | FakeCoinbase

    @property
    def venue_name(self) -> str:
        return "kraken" if isinstance(self.fake, FakeKraken) else "coinbase"

    def set_balance(self, currency: str, amount: Decimal) -> None:
        self.fake.set_balance(currency, Decimal(amount))

    async def set_price(self, pair: str, price: Decimal, spread: Decimal = Decimal(0)) -> None:
        """Set the mid (market orders fill at mid ± spread/2); crossed resting limit orders fill."""
        await self.fake.set_price(pair, Decimal(price), Decimal(spread))

    async def fill(self, client_order_id: str, qty: Decimal, price: Decimal | None = None) -> None:
        """Fill part (or all) of a resting order now."""
        await self.fake.fill(client_order_id, Decimal(qty), price)

    def set_max_fill_qty(self, qty: Decimal | None) -> None:
        """Cap each match so orders fill in parts (None = fill whole)."""
        self.fake.max_fill_qty = qty

    def _row(self, ts: datetime, ohlcv: tuple[Decimal, ...]) -> Any:
        o, h, low, c, v = (f"{Decimal(x):f}" for x in ohlcv)
        if isinstance(self.fake, FakeKraken):
            return [int(ts.timestamp()), o, h, low, c, c, v, 1]
        return {"start": str(int(ts.timestamp())), "low": low, "high": h, "open": o, "close": c, "volume": v}

    def _interval(self, timeframe_s: int) -> int:
        return timeframe_s // 60 if isinstance(self.fake, FakeKraken) else timeframe_s

    def add_candle(self, pair: str, timeframe_s: int, ts: datetime, *ohlcv: Decimal) -> None:
        """Candle history only (REST), not streamed."""
        self.fake.add_candles(pair, self._interval(timeframe_s), [self._row(ts, ohlcv)])

    async def push_candle(self, pair: str, timeframe_s: int, ts: datetime, *ohlcv: Decimal) -> None:
        """A candle (running or final) recorded and streamed to WebSocket subscribers."""
        await self.fake.push_candle(pair, self._interval(timeframe_s), self._row(ts, ohlcv))

    async def push_ticker(self, pair: str) -> None:
        await self.fake.push_ticker(pair)

    async def drop_websockets(self) -> None:
        await self.fake.drop_websockets()


class _Harness:
    def __init__(self, fake: FakeKraken | FakeCoinbase, kwargs: dict[str, Any]) -> None:
        self.fake, self.kwargs = fake, kwargs
        self.venue: KrakenExchange | CoinbaseExchange | None = None

    def __await__(self) -> Generator[Any, None, _Harness]:
        yield from ()  # a generator that finishes at once: ``await kraken_venue()`` is the harness itself
        return self

    async def __aenter__(self) -> tuple[Any, MarketController]:
        await self.fake.__aenter__()
        options = {**fast_settings(), **self.kwargs}
        if isinstance(self.fake, FakeKraken):
            self.venue = KrakenExchange(self.fake.api_key, self.fake.api_secret, rest_url=self.fake.rest_url,
                                        ws_url=self.fake.ws_url, ws_auth_url=self.fake.ws_auth_url, **options)
        else:
            self.venue = CoinbaseExchange(self.fake.key_name, self.fake.private_key_pem, rest_url=self.fake.rest_url,
                                          ws_url=self.fake.ws_url, ws_user_url=self.fake.ws_user_url, **options)
        await self.venue.start()
        return self.venue, MarketController(self.fake)

    async def __aexit__(self, *exc: object) -> None:
        if self.venue is not None:
            await self.venue.stop()
        await self.fake.__aexit__(*exc)


# The fake does not enforce Kraken's API counter, so the local mirror need not slow tests down.
UNTHROTTLED = Tier(max_count=10_000, decay_per_s=10_000)


def kraken_venue(**adapter_kwargs: Any) -> _Harness:
    """A started :class:`KrakenExchange` wired to a fresh :class:`FakeKraken`, and its controller."""
    return _Harness(FakeKraken(), {"tier": UNTHROTTLED, **adapter_kwargs})


def coinbase_venue(**adapter_kwargs: Any) -> _Harness:
    """A started :class:`CoinbaseExchange` wired to a fresh :class:`FakeCoinbase`, and its controller."""
    return _Harness(FakeCoinbase(), adapter_kwargs)
