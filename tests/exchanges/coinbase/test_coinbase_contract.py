"""The shared venue contract, run against the Coinbase adapter talking to the fake Coinbase."""

from __future__ import annotations

from tests.exchanges.contract import ExchangeContract, venue_fixture
from tests.exchanges.fakes import coinbase_venue


class TestCoinbaseContract(ExchangeContract):
    venue = venue_fixture(coinbase_venue)
