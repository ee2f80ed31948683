from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from exchanges.kraken import KrakenExchange
from tests.exchanges.fakes import UNTHROTTLED, FakeKraken, fast_settings
from tests.exchanges.fakes.recording import RecordingTransport
from tests.exchanges.fixtures import kraken_asset_pairs
from tests.fakes.clock import ManualClock

TEST_SECRET = base64.b64encode(b"k" * 64).decode()


def envelope(result: object) -> dict[str, object]:
    return {"error": [], "result": result}


@pytest.fixture
def recorded_venue() -> KrakenExchange:
    """An adapter whose HTTP goes to a :class:`RecordingTransport` (no server) at Kraken's real URL."""
    transport = RecordingTransport({"/0/public/AssetPairs": envelope(kraken_asset_pairs())})
    venue = KrakenExchange("test-key", TEST_SECRET, transport=transport,
                           clock=ManualClock(datetime(2024, 6, 1, tzinfo=UTC)), **fast_settings())
    venue.transport = transport  # type: ignore[attr-defined]
    return venue


@pytest.fixture
async def fake() -> AsyncIterator[FakeKraken]:
    async with FakeKraken() as server:
        yield server


@pytest.fixture
async def venue(fake: FakeKraken) -> AsyncIterator[KrakenExchange]:
    adapter = KrakenExchange(fake.api_key, fake.api_secret, rest_url=fake.rest_url, ws_url=fake.ws_url,
                             ws_auth_url=fake.ws_auth_url, tier=UNTHROTTLED, **fast_settings())
    await adapter.start()
    yield adapter
    await adapter.stop()
