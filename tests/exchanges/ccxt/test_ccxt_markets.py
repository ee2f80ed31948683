"""Market rules from ccxt's ``load_markets`` in each of ccxt's precision modes, as Decimal steps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.ccxt.convert import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE, dec, market
from tests.exchanges.ccxt.harness import ccxt_venue
from tests.exchanges.fakes import FakeCoinbase, FakeKraken


def raw(precision: dict[str, Any], amount_min: float | None = 0.0001, cost_min: float | None = 0.5,
        **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "spot": True, "active": True,
            "precision": precision, "limits": {"amount": {"min": amount_min}, "cost": {"min": cost_min}},
            "maker": 0.0016, "taker": 0.0026, **extra}


def test_tick_size_mode_reads_the_step_itself_through_str_not_the_binary_float() -> None:
    m = market(raw({"amount": 1e-08, "price": 0.1}), TICK_SIZE)
    assert m is not None
    assert m.qty_step == Decimal("1E-8") and m.price_tick == Decimal("0.1")  # not 0.1000000000000000055511...
    assert m.min_qty == Decimal("0.0001") and m.min_notional == Decimal("0.5")
    assert m.taker_fee == Decimal("0.0026") and m.maker_fee == Decimal("0.0016")


def test_decimal_places_mode_turns_a_count_of_places_into_a_step() -> None:
    m = market(raw({"amount": 8, "price": 2}), DECIMAL_PLACES)
    assert m is not None and m.qty_step == Decimal("0.00000001") and m.price_tick == Decimal("0.01")


def test_significant_digits_mode_takes_the_step_at_the_minimum() -> None:
    m = market(raw({"amount": 5, "price": 5}, amount_min=0.0012, price={"min": 0.01}), SIGNIFICANT_DIGITS)
    assert m is not None and m.qty_step == Decimal("1E-7")


def test_a_minimum_off_the_step_is_rounded_up_to_it_and_derivatives_are_skipped() -> None:
    m = market(raw({"amount": 0.001, "price": 0.5}, amount_min=0.00015, cost_min=None), TICK_SIZE)
    assert m is not None and m.min_qty == Decimal("0.001") and m.round_qty(m.min_qty) == m.min_qty
    assert m.min_notional == 0
    assert market(raw({"amount": 1, "price": 1}, spot=False, swap=True), TICK_SIZE) is None
    assert market(raw({"amount": 1, "price": 1}, active=False), TICK_SIZE) is None


def test_numbers_cross_through_their_text() -> None:
    assert dec(0.1) == Decimal("0.1") and dec(20000.0) == Decimal("20000") and dec(None) is None
    assert dec("0.00000001") == Decimal("1E-8")


async def test_kraken_and_coinbase_markets_match_the_venues_recorded_rules() -> None:
    async with ccxt_venue(FakeKraken()) as (kraken, _):
        btc = (await kraken.markets())["BTC/USD"]
        # AssetPairs: ordermin 0.0001, costmin 0.5, tick_size 0.1, lot_decimals 8
        assert (btc.min_qty, btc.min_notional, btc.price_tick, btc.qty_step) == (
            Decimal("0.0001"), Decimal("0.5"), Decimal("0.1"), Decimal("1E-8"))
        assert btc.venue_symbol == "BTC/USD" and "DOGE/USDT" in await kraken.markets()
    async with ccxt_venue(FakeCoinbase()) as (coinbase, _):
        markets = await coinbase.markets()
        assert "ADA/USD" not in markets and all("PERP" not in p for p in markets)  # the perpetual is skipped
        btc = markets["BTC/USD"]
        assert (btc.min_notional, btc.price_tick, btc.taker_fee) == (Decimal("1"), Decimal("0.01"), Decimal("0.006"))
