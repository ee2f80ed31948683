"""Coinbase replies parsed into the contract's types, checked against recorded replies; products."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exchanges.base import OrderStatus, OrderType, Side
from exchanges.coinbase import parse
from exchanges.coinbase.rest import order_failure
from exchanges.coinbase.symbols import CoinbaseSymbols, to_pair, to_product_id
from exchanges.errors import InsufficientFunds, InvalidOrder, MalformedResponse, UnknownPair
from tests.exchanges.fixtures import coinbase_products, recorded

PRODUCTS = coinbase_products()
SYMBOLS = CoinbaseSymbols.from_products(PRODUCTS)
NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize("product", [p for p in PRODUCTS["products"] if p["product_type"] == "SPOT"],
                         ids=lambda p: p["product_id"])
def test_every_recorded_spot_product_round_trips(product: dict) -> None:
    pid = product["product_id"]
    pair = to_pair(pid)
    assert pair == f"{product['base_currency_id']}/{product['quote_currency_id']}"
    assert to_product_id(pair) == pid
    assert SYMBOLS.by_pair(pair).product_id == pid and SYMBOLS.by_product_id(pid).pair == pair
    market = SYMBOLS.by_pair(pair).market
    assert market.min_qty == Decimal(product["base_min_size"]) and market.qty_step == Decimal(product["base_increment"])
    assert market.price_tick == Decimal(product["price_increment"])
    assert market.min_notional == Decimal(product["quote_min_size"])


def test_derivatives_are_not_spot_markets() -> None:
    assert len(SYMBOLS) == 8
    with pytest.raises(UnknownPair):
        SYMBOLS.by_product_id("ADA-PERP-INTX")


def test_closed_market_order_matches_the_reference() -> None:
    case = recorded("response", "coinbase", "fetchClosedOrders")
    order = parse.parse_order(case["httpResponse"]["orders"][0], SYMBOLS)
    expected = case["parsedResponse"][0]
    assert order.venue_order_id == expected["id"] and order.client_order_id == expected["clientOrderId"]
    assert (order.pair, order.side, order.type, order.status) == ("ADA/USDT", Side.SELL, OrderType.MARKET,
                                                                  OrderStatus.FILLED)
    assert order.qty == Decimal("10") and order.filled_qty == Decimal("10")
    assert order.avg_price == Decimal("0.392") and order.fee == Decimal("0.03136") and order.fee_currency == "USDT"
    assert order.created_at == datetime(2023, 11, 26, 10, 19, 47, 423220, tzinfo=UTC)


def test_partially_filled_and_failed_orders() -> None:
    raw = recorded("response", "coinbase", "fetchClosedOrders")["httpResponse"]["orders"][0]
    partial = parse.parse_order({**raw, "status": "OPEN", "filled_size": "4", "average_filled_price": "0",
                                 "filled_value": "1.6"}, SYMBOLS)
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.avg_price == Decimal("0.4")
    failed = parse.parse_order({**raw, "status": "FAILED", "filled_size": "0", "reject_message": "too small"}, SYMBOLS)
    assert failed.status is OrderStatus.REJECTED and failed.reject_reason == "too small"


def test_fill_matches_the_reference() -> None:
    case = recorded("response", "coinbase", "fetchMyTrades", "Spot trade")
    fill = parse.parse_fill(case["httpResponse"]["fills"][0], SYMBOLS, "tc-x")
    expected = case["parsedResponse"][0]
    assert fill.fill_id == case["httpResponse"]["fills"][0]["entry_id"]
    assert fill.venue_order_id == expected["order"] and fill.client_order_id == "tc-x"
    assert (fill.pair, fill.side, fill.qty, fill.price) == ("ADA/USDT", Side.SELL, Decimal("10"), Decimal("0.392"))
    assert fill.fee == Decimal("0.03136") and fill.fee_currency == "USDT" and fill.liquidity == "taker"
    assert fill.ts == datetime(2023, 11, 26, 10, 19, 47, 504000, tzinfo=UTC)


def test_a_fill_sized_in_quote_is_converted_to_base() -> None:
    raw = recorded("response", "coinbase", "fetchMyTrades", "Spot trade")["httpResponse"]["fills"][0]
    fill = parse.parse_fill({**raw, "size": "3.92", "size_in_quote": True}, SYMBOLS)
    assert fill.qty == Decimal("10")


def test_fills_of_derivatives_are_not_spot() -> None:
    raw = recorded("response", "coinbase", "fetchMyTrades", "swap trade")["httpResponse"]["fills"][0]
    with pytest.raises(UnknownPair):
        parse.parse_fill(raw, SYMBOLS)


def test_ticker_matches_the_reference() -> None:
    case = recorded("response", "coinbase", "fetchTicker")
    ticker = parse.parse_ticker(case["httpResponse"], "BTC/USDC", NOW)
    assert (ticker.bid, ticker.ask, ticker.last) == (Decimal("66367.58"), Decimal("66367.59"), Decimal("66363.03"))
    assert ticker.ts == datetime(2024, 4, 24, 9, 56, 38, 63595, tzinfo=UTC)


def test_candles_come_out_oldest_first() -> None:
    payload = {"candles": [
        {"start": "1700000060", "low": "1", "high": "3", "open": "2", "close": "2.5", "volume": "10"},
        {"start": "1700000000", "low": "1", "high": "2", "open": "1", "close": "2", "volume": "5"}]}
    candles = parse.parse_candles(payload, "BTC/USD", 60)
    assert [c.ts.timestamp() for c in candles] == [1700000000, 1700000060] and candles[1].close == Decimal("2.5")


def test_accounts_add_holds_to_the_total() -> None:
    balances = parse.parse_accounts([
        {"currency": "USD", "available_balance": {"value": "90.5", "currency": "USD"}, "hold": {"value": "9.5"}},
        {"currency": "BTC", "available_balance": {"value": "0.1", "currency": "BTC"}, "hold": {"value": "0"}},
    ])
    assert balances["USD"].total == Decimal("100.0") and balances["USD"].available == Decimal("90.5")


@pytest.mark.parametrize(("code", "kind"), [("INSUFFICIENT_FUND", InsufficientFunds),
                                            ("UNKNOWN_PRODUCT_ID", UnknownPair),
                                            ("INVALID_LIMIT_PRICE_POST_ONLY", InvalidOrder)])
def test_order_failures_map_to_the_hierarchy(code: str, kind: type) -> None:
    error = order_failure({"error": code, "message": "m"}, "Coinbase order tc-1")
    assert type(error) is kind and code in str(error)


def test_garbage_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        parse.parse_order({"product_id": "BTC-USD"}, SYMBOLS)
    with pytest.raises(MalformedResponse):
        parse.parse_candles({"candles": "nope"}, "BTC/USD", 60)
    with pytest.raises(MalformedResponse):
        CoinbaseSymbols.from_products({"items": []})
