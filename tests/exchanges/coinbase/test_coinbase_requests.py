"""What the adapter sends, checked against the requests a mature client was recorded sending."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from exchanges.base import OrderRequest, OrderType, Side
from exchanges.coinbase import CoinbaseExchange
from exchanges.errors import InvalidOrder
from tests.exchanges.fixtures import recorded

SKIP = {"client_order_id"}  # varies per run (the recorded file's skipKeys)


def without(body: dict, keys: set[str]) -> dict:
    return {k: v for k, v in body.items() if k not in keys}


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def order_reply(order_id: str) -> dict:
    return {"success": True, "success_response": {"order_id": order_id}}


async def submit(venue: CoinbaseExchange, request: OrderRequest) -> dict:
    t = venue.transport  # type: ignore[attr-defined]
    closed = recorded("response", "coinbase", "fetchClosedOrders")["httpResponse"]["orders"][0]
    t.replies.update({
        "/api/v3/brokerage/orders": order_reply(closed["order_id"]),
        f"/api/v3/brokerage/orders/historical/{closed['order_id']}": {"order": closed},
    })
    await venue.place_order(request)
    (sent,) = t.sent("/brokerage/orders")
    return {"url": str(sent.url), "body": json.loads(sent.content), "auth": sent.headers["Authorization"]}


async def test_market_sell_matches_the_recorded_request(recorded_venue: CoinbaseExchange) -> None:
    case = recorded("request", "coinbase", "createOrder", "Spot market sell")
    sent = await submit(recorded_venue,
                        OrderRequest("tc-sell-1", "ADA/USDT", Side.SELL, OrderType.MARKET, Decimal("10")))
    assert sent["url"] == case["url"]
    assert without(sent["body"], SKIP) == without(json.loads(case["output"]), SKIP)
    assert sent["body"]["client_order_id"] == "tc-sell-1" and sent["auth"].startswith("Bearer ey")


async def test_limit_buy_body_matches_the_recorded_request(recorded_venue: CoinbaseExchange) -> None:
    case = recorded("request", "coinbase", "createOrder", "spot limit buy")
    request = OrderRequest("tc-buy-1", "ADA/USDT", Side.BUY, OrderType.LIMIT, Decimal("4"), Decimal("0.2"))
    body = recorded_venue.order_body(request, "ADA-USDT")
    assert without(body, SKIP) == without(json.loads(case["output"]), SKIP)
    # 4 x 0.2 = 0.8 USDT is under ADA-USDT's quote_min_size of 1: refused before anything is sent
    with pytest.raises(InvalidOrder, match="below Coinbase's minimum 1 USDT"):
        await recorded_venue.place_order(request)
    assert not recorded_venue.transport.sent("/brokerage/orders")  # type: ignore[attr-defined]


async def test_cancel_and_fetch_order_match_the_recorded_requests(recorded_venue: CoinbaseExchange) -> None:
    t = recorded_venue.transport  # type: ignore[attr-defined]
    order_id = "9fd0cadc-2ccc-45e8-b254-ea511c34e5b2"
    base = recorded("response", "coinbase", "fetchClosedOrders")["httpResponse"]["orders"][0]
    open_order = {**base, "order_id": order_id, "product_id": "DOGE-USDT", "status": "OPEN", "client_order_id": "tc-c",
                  "order_configuration": {"limit_limit_gtc": {"base_size": "10", "limit_price": "0.05",
                                                              "post_only": False}}}
    t.replies.update({
        "/api/v3/brokerage/orders/historical/batch": {"orders": [open_order], "has_next": False, "cursor": ""},
        f"/api/v3/brokerage/orders/historical/{order_id}": {"order": open_order},
        "/api/v3/brokerage/orders/batch_cancel": {"results": [{"success": True, "order_id": order_id}]},
    })
    await recorded_venue.cancel_order("DOGE/USDT", "tc-c")
    (cancel,) = t.sent("/batch_cancel")
    case = recorded("request", "coinbase", "cancelOrder", "cancel order")
    assert str(cancel.url) == case["url"] and json.loads(cancel.content) == json.loads(case["output"])
    fetches = [str(r.url) for r in t.sent(f"/historical/{order_id}")]
    assert fetches[0] == recorded("request", "coinbase", "fetchOrder", "fetch order")["url"]


async def test_open_orders_balances_and_market_data_urls_match(recorded_venue: CoinbaseExchange) -> None:
    t = recorded_venue.transport  # type: ignore[attr-defined]
    t.replies.update({
        "/api/v3/brokerage/orders/historical/batch": {"orders": [], "has_next": False, "cursor": ""},
        "/api/v3/brokerage/accounts": {"accounts": [], "has_next": False, "cursor": ""},
        "/api/v3/brokerage/products/BTC-USDT/ticker": recorded("response", "coinbase", "fetchTicker")["httpResponse"],
        "/api/v3/brokerage/product_book": {"pricebook": {"product_id": "BTC-USD", "bids": [], "asks": []}},
        "/api/v3/brokerage/products/BTC-USDT/candles": {"candles": []},
        "/api/v3/brokerage/time": {"iso": "2024-03-04T10:53:56Z", "epochSeconds": "1709549636",
                                   "epochMillis": "1709549636000"},
    })
    await recorded_venue.open_orders()
    assert str(t.sent("/historical/batch")[0].url) == recorded("request", "coinbase", "fetchOpenOrders")["url"]
    await recorded_venue.balances()
    expected_url = recorded("request", "coinbase", "fetchBalance", "fetch spot balance v3")["url"]
    assert str(t.sent("/accounts")[0].url) == expected_url
    await recorded_venue.ticker("BTC/USDT")
    assert str(t.sent("/ticker")[0].url) == recorded("request", "coinbase", "fetchTicker")["url"]

    await recorded_venue.order_book("BTC/USD", depth=5)
    book = t.sent("/product_book")[0]
    expected = recorded("request", "coinbase", "fetchOrderBook", "fetch orderbook")["url"]
    assert book.url.path == urlsplit(expected).path and query(str(book.url)) == {**query(expected), "limit": "5"}

    since = datetime.fromtimestamp(1678012344.389, UTC)
    await recorded_venue.candles("BTC/USDT", 60, since=since, limit=20)
    await recorded_venue.candles("BTC/USDT", 60, limit=300)  # the clock stands at 1709549636
    (with_since, recent) = t.sent("/candles")
    for sent, case in ((with_since, "with since and limit"), (recent, "without aguments")):
        url = recorded("request", "coinbase", "fetchOHLCV", case)["url"]
        assert sent.url.path == urlsplit(url).path
        if case == "with since and limit":
            assert query(str(sent.url)) == query(url)
    assert query(str(recent.url))["granularity"] == "ONE_MINUTE"
    assert int(query(str(recent.url))["end"]) - int(query(str(recent.url))["start"]) == 300 * 60

    await recorded_venue.rest.request("GET", "/time", retry=True, auth=False)
    time_req = t.sent("/time")[0]
    assert str(time_req.url) == recorded("request", "coinbase", "fetchTime", "fetch time - v3")["url"]
    assert "Authorization" not in time_req.headers


async def test_every_signed_request_names_its_own_method_and_path(recorded_venue: CoinbaseExchange) -> None:
    from tests.exchanges.coinbase.test_coinbase_auth import decode

    t = recorded_venue.transport  # type: ignore[attr-defined]
    t.replies["/api/v3/brokerage/accounts"] = {"accounts": [], "has_next": False}
    await recorded_venue.balances()
    for request in t.requests:
        claims = decode(request.headers["Authorization"].removeprefix("Bearer "))[1]
        assert claims["uri"] == f"{request.method} api.coinbase.com{request.url.path}"
