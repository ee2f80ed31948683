"""Pair names, both ways, for every pair in the recorded AssetPairs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchanges.errors import UnknownPair
from exchanges.kraken.symbols import KrakenSymbols
from tests.exchanges.fixtures import kraken_asset_pairs

ASSET_PAIRS = kraken_asset_pairs()
SYMBOLS = KrakenSymbols.from_asset_pairs(ASSET_PAIRS)


@pytest.mark.parametrize("rest_id", sorted(ASSET_PAIRS))
def test_every_recorded_pair_round_trips_through_every_name(rest_id: str) -> None:
    info = ASSET_PAIRS[rest_id]
    pair = SYMBOLS.by_venue_name(rest_id)
    ours = pair.pair
    assert "/" in ours and ours.upper() == ours
    assert SYMBOLS.by_pair(ours).rest_id == rest_id
    for name in (rest_id, info["altname"], info["wsname"], pair.ws_symbol):
        assert SYMBOLS.by_venue_name(name).pair == ours
    assert SYMBOLS.asset(info["base"]) == pair.market.base
    assert SYMBOLS.asset(info["quote"]) == pair.market.quote
    assert SYMBOLS.asset_code(pair.market.base) == info["base"]


def test_kraken_specific_names_become_the_usual_ones() -> None:
    btc = SYMBOLS.by_pair("BTC/USD")
    assert (btc.rest_id, btc.altname, btc.wsname, btc.ws_symbol) == ("XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD")
    assert SYMBOLS.by_venue_name("XDGUSDT").pair == "DOGE/USDT"
    assert SYMBOLS.asset("XXBT") == "BTC" and SYMBOLS.asset("ZUSD") == "USD" and SYMBOLS.asset("XXDG") == "DOGE"


def test_market_rules_come_from_asset_pairs() -> None:
    m = SYMBOLS.by_pair("BTC/USD").market
    assert m.venue_symbol == "XXBTZUSD"
    assert m.min_qty == Decimal("0.0001")
    assert m.qty_step == Decimal("0.00000001")   # lot_decimals 8
    assert m.price_tick == Decimal("0.1")        # tick_size
    assert m.min_notional == Decimal("0.5")      # costmin
    assert m.taker_fee == Decimal("0.0026") and m.maker_fee == Decimal("0.0016")
    ada = SYMBOLS.by_pair("ADA/USDT").market
    assert ada.min_qty == Decimal("20") and ada.price_tick == Decimal("0.000001")


def test_unknown_names_are_unknown_pairs() -> None:
    with pytest.raises(UnknownPair):
        SYMBOLS.by_pair("ETH/USD")
    with pytest.raises(UnknownPair):
        SYMBOLS.by_venue_name("XETHZUSD")


def test_unlisted_legacy_asset_codes_still_read_sensibly() -> None:
    assert SYMBOLS.asset("ZEUR") == "EUR" and SYMBOLS.asset("XETC") == "ETC" and SYMBOLS.asset("DOT") == "DOT"
