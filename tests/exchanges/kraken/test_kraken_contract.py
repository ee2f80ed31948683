"""The shared venue contract, run against the Kraken adapter talking to the fake Kraken."""

from __future__ import annotations

from tests.exchanges.contract import ExchangeContract, venue_fixture
from tests.exchanges.fakes import kraken_venue


class TestKrakenContract(ExchangeContract):
    venue = venue_fixture(kraken_venue)
