"""Fixtures for the strategy tests."""

from __future__ import annotations

import pytest

from strategies.base import Candles
from tests.strategies.candle_data import DATA, load_csv


@pytest.fixture(scope="session")
def btc() -> Candles:
    """20,111 real hourly BTC/USD candles from Coinbase (2017-07 .. 2019-10)."""
    return load_csv(DATA, "BTC/USD", 3600)
