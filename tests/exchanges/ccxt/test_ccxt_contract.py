"""The shared venue contract, run against ccxt's Kraken and Coinbase classes talking to the fakes."""

from __future__ import annotations

from tests.exchanges.ccxt.harness import ccxt_coinbase_venue, ccxt_kraken_venue
from tests.exchanges.contract import ExchangeContract, venue_fixture


class TestCcxtKrakenContract(ExchangeContract):
    venue = venue_fixture(ccxt_kraken_venue)


class TestCcxtCoinbaseContract(ExchangeContract):
    venue = venue_fixture(ccxt_coinbase_venue)
