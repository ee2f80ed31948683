from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exchanges.coinbase import CoinbaseExchange
from tests.exchanges.fakes import FakeCoinbase, fast_settings
from tests.exchanges.fakes.recording import RecordingTransport
from tests.exchanges.fixtures import coinbase_products
from tests.fakes.clock import ManualClock

KEY_NAME = "organizations/3e1b7c2a-0000-4000-8000-000000000001/apiKeys/9a8b7c6d-0000-4000-8000-000000000002"


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ec_pem(ec_key: ec.EllipticCurvePrivateKey) -> str:
    return ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()


@pytest.fixture
def recorded_venue(ec_pem: str) -> CoinbaseExchange:
    """An adapter whose HTTP goes to a :class:`RecordingTransport` at Coinbase's real URL."""
    transport = RecordingTransport({"/api/v3/brokerage/products": coinbase_products()})
    venue = CoinbaseExchange(KEY_NAME, ec_pem, transport=transport,
                             clock=ManualClock(datetime(2024, 3, 4, 10, 53, 56, tzinfo=UTC)), **fast_settings())
    venue.transport = transport  # type: ignore[attr-defined]
    return venue


@pytest.fixture
async def fake() -> AsyncIterator[FakeCoinbase]:
    async with FakeCoinbase() as server:
        yield server


@pytest.fixture
async def venue(fake: FakeCoinbase) -> AsyncIterator[CoinbaseExchange]:
    adapter = CoinbaseExchange(fake.key_name, fake.private_key_pem, rest_url=fake.rest_url, ws_url=fake.ws_url,
                               ws_user_url=fake.ws_user_url, **fast_settings())
    await adapter.start()
    yield adapter
    await adapter.stop()
