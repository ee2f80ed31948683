"""Kraken replies parsed into the contract's types, checked against recorded replies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exchanges.base import OrderStatus, OrderType, Side
from exchanges.errors import MalformedResponse
from exchanges.kraken import parse
from exchanges.kraken.symbols import KrakenSymbols
from tests.exchanges.fixtures import kraken_asset_pairs, recorded, recorded_cases

SYMBOLS = KrakenSymbols.from_asset_pairs(kraken_asset_pairs())
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def test_closed_market_order_has_cost_fee_volume_and_average_price() -> None:
    reply = recorded("response", "kraken", "fetchOrder", "closed market order")["httpResponse"]["result"]
    (order,) = parse.parse_orders(reply, SYMBOLS)
    assert order.venue_order_id == "OGMZCL-KC6MC-ZRBGM6"
    assert (order.pair, order.side, order.type) == ("LTC/USDT", Side.BUY, OrderType.MARKET)
    assert order.status is OrderStatus.FILLED
    assert order.qty == Decimal("0.1") and order.filled_qty == Decimal("0.1")
    assert order.avg_price == Decimal("71.05741")
    assert order.avg_price * order.filled_qty == Decimal("7.105741")  # Kraken's cost
    assert order.fee == Decimal("0.018475") and order.fee_currency == "USDT"
    assert order.created_at == datetime(2024, 1, 14, 19, 29, 7, 472000, tzinfo=UTC)
    assert isinstance(order.qty, Decimal) and isinstance(order.fee, Decimal)


def test_open_limit_order() -> None:
    reply = recorded("response", "kraken", "fetchOrder", "fetch spot limit order")["httpResponse"]["result"]
    (order,) = parse.parse_orders(reply, SYMBOLS)
    assert order.status is OrderStatus.SUBMITTED and order.type is OrderType.LIMIT
    assert order.limit_price == Decimal("50") and order.filled_qty == 0 and order.avg_price is None


@pytest.mark.parametrize("case", recorded_cases("response", "kraken", "fetchOpenOrders"),
                         ids=lambda c: c["description"])
def test_every_recorded_open_order_parses_like_the_reference(case: dict) -> None:
    (order,) = parse.parse_orders(case["httpResponse"]["result"]["open"], SYMBOLS)
    (expected,) = case["parsedResponse"]
    assert order.venue_order_id == expected["id"]
    assert order.pair == expected["symbol"] and order.side.value == expected["side"]
    assert order.qty == Decimal(str(expected["amount"])) and order.filled_qty == Decimal(str(expected["filled"]))
    assert order.status is OrderStatus.SUBMITTED


def test_stop_limit_order_reports_its_limit_not_its_trigger() -> None:
    case = recorded("response", "kraken", "fetchOpenOrders", "open stop-loss-limit order")
    (order,) = parse.parse_orders(case["httpResponse"]["result"]["open"], SYMBOLS)
    assert order.limit_price == Decimal("54")


def test_ticker_matches_the_reference() -> None:
    case = recorded("response", "kraken", "fetchTicker")
    ticker = parse.parse_ticker(case["httpResponse"]["result"], "BTC/USDT", NOW)
    expected = case["parsedResponse"]
    assert (ticker.bid, ticker.ask, ticker.last) == (Decimal("73380.6"), Decimal("73380.7"), Decimal("73380.6"))
    assert ticker.bid == Decimal(str(expected["bid"])) and ticker.ask == Decimal(str(expected["ask"]))


def test_ohlc_rows_and_the_last_committed_candle() -> None:
    reply = recorded("response", "kraken", "fetchOHLCV")["httpResponse"]["result"]
    candles, last = parse.parse_ohlc(reply, "BTC/USDT", 3600)
    assert len(candles) == 6 and last == 1706796000
    first = candles[1]
    assert first.ts == datetime.fromtimestamp(1706630400, UTC)
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("43366.3"), Decimal("43529.2"), Decimal("43234.2"), Decimal("43485.0"), Decimal("12.51327406"))


def trade(**overrides: object) -> dict:
    base = {"ordertxid": "OQCLML-BW3P3-BUCMWZ", "postxid": "TKH2SE-M7IF5-CFI7LT", "pair": "XXBTZUSD",
            "time": Decimal("1688667796.8802"), "type": "buy", "ordertype": "limit", "price": "30010.00000",
            "cost": "600.20000", "fee": "0.00000", "vol": "0.02000000", "margin": "0.00000", "misc": "",
            "trade_id": 40274859, "maker": True}
    return {**base, **overrides}


def test_a_fill_with_zero_cost_is_not_lost() -> None:
    """A known bug elsewhere: partial fills dropped when Kraken reported cost 0."""
    fills = parse.parse_trades({"THVRQM-33VKH-UCI7BS": trade(cost="0.00000")}, SYMBOLS, lambda t: "tc-partial")
    (fill,) = fills
    assert fill.qty == Decimal("0.02") and fill.price == Decimal("30010")
    assert fill.client_order_id == "tc-partial" and fill.liquidity == "maker" and fill.pair == "BTC/USD"


def test_a_fill_without_price_gets_it_from_cost_over_volume() -> None:
    (fill,) = parse.parse_trades({"T1": trade(price="0")}, SYMBOLS)
    assert fill.price == Decimal("30010")


def test_partially_filled_order_without_cost_keeps_its_filled_volume() -> None:
    raw = recorded("response", "kraken", "fetchOrder", "fetch spot limit order")["httpResponse"]["result"]
    entry = raw["OR6EGN-KQSEG-AMI6CL"]
    entry.update(vol_exec="0.04000000", cost="0.000000", price="0.000000")
    (order,) = parse.parse_orders(raw, SYMBOLS)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == Decimal("0.04")


def test_trades_are_returned_oldest_first_with_fees() -> None:
    trades = {"T2": trade(time=Decimal("1688667800.1"), fee="0.5"),
              "T1": trade(time=Decimal("1688667700.0"), fee="0.1")}
    fills = parse.parse_trades(trades, SYMBOLS)
    assert [f.fill_id for f in fills] == ["T1", "T2"] and [f.fee for f in fills] == [Decimal("0.1"), Decimal("0.5")]
    assert all(f.fee_currency == "USD" and f.ts.tzinfo is UTC for f in fills)


def test_balances_subtract_what_open_orders_hold() -> None:
    balances = parse.parse_balances({"ZUSD": {"balance": "1000.5", "hold_trade": "100.5"},
                                     "XXBT": {"balance": "0.5", "hold_trade": "0"},
                                     "XXBT.F": {"balance": "0.1", "hold_trade": "0"},
                                     "DOT.S": {"balance": "10", "hold_trade": "0"}}, SYMBOLS)
    assert balances["USD"].total == Decimal("1000.5") and balances["USD"].available == Decimal("900.0")
    assert balances["BTC"].total == Decimal("0.6")
    assert "DOT" not in balances


def test_garbage_is_a_malformed_response_not_a_crash() -> None:
    with pytest.raises(MalformedResponse):
        parse.parse_orders({"OX": {"descr": {"pair": "XBTUSD"}}}, SYMBOLS)
    with pytest.raises(MalformedResponse):
        parse.parse_ticker({"XXBTZUSD": {"a": "nope"}}, "BTC/USD", NOW)
    with pytest.raises(MalformedResponse):
        parse.parse_trades({"T": trade(vol="abc")}, SYMBOLS)
