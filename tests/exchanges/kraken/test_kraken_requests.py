"""What the adapter sends, checked against the requests a mature client was recorded sending."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

from exchanges.base import OrderRequest, OrderType, Side
from exchanges.kraken import KrakenExchange
from tests.exchanges.fixtures import recorded
from tests.exchanges.kraken.conftest import envelope

OUR_EXTRA_FIELDS = {"cl_ord_id"}  # we always tag orders with our client id


def form(body: bytes | str, skip: set[str]) -> list[tuple[str, str]]:
    text = body.decode() if isinstance(body, bytes) else body
    return [(k, v) for k, v in parse_qsl(text, keep_blank_values=True) if k not in skip]


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def place_market(venue: KrakenExchange, side: Side) -> None:
    venue.transport.replies.update({  # type: ignore[attr-defined]
        "/0/private/OpenOrders": envelope({"open": {}}),
        "/0/private/ClosedOrders": envelope({"closed": {}, "count": 0}),
        "/0/private/AddOrder": recorded("response", "kraken", "createOrder")["httpResponse"],
        "/0/private/QueryOrders": envelope({}),
    })
    await venue.place_order(OrderRequest("tc00000000000001", "LTC/USDT", side, OrderType.MARKET, Decimal("0.1")))


async def test_add_order_market_buy_matches_the_recorded_request(recorded_venue: KrakenExchange) -> None:
    case = recorded("request", "kraken", "createOrder", "Spot market buy")
    await place_market(recorded_venue, Side.BUY)
    (sent,) = recorded_venue.transport.sent("/AddOrder")  # type: ignore[attr-defined]
    assert str(sent.url) == case["url"]
    assert form(sent.content, {"nonce"} | OUR_EXTRA_FIELDS) == form(case["output"], {"nonce"})
    assert dict(form(sent.content, set()))["cl_ord_id"] == "tc00000000000001"
    assert sent.headers["API-Key"] == "test-key" and sent.headers["API-Sign"]


async def test_add_order_market_sell_matches_the_recorded_request(recorded_venue: KrakenExchange) -> None:
    case = recorded("request", "kraken", "createOrder", "Spot market sell")
    await place_market(recorded_venue, Side.SELL)
    (sent,) = recorded_venue.transport.sent("/AddOrder")  # type: ignore[attr-defined]
    assert str(sent.url) == case["url"]
    assert form(sent.content, {"nonce"} | OUR_EXTRA_FIELDS) == form(case["output"], {"nonce"})


async def test_every_private_request_has_a_fresh_increasing_nonce(recorded_venue: KrakenExchange) -> None:
    await place_market(recorded_venue, Side.BUY)
    nonces = [int(dict(form(r.content, set()))["nonce"]) for r in recorded_venue.transport.requests  # type: ignore[attr-defined]
              if r.method == "POST"]
    assert len(nonces) == 4 and nonces == sorted(nonces) and len(set(nonces)) == 4


async def test_cancel_order_matches_the_recorded_request(recorded_venue: KrakenExchange) -> None:
    case = recorded("request", "kraken", "cancelOrder")
    open_order = recorded("response", "kraken", "fetchOpenOrders", "fetch open trailing stop order")["httpResponse"]
    txid = "OF7S76-H2IMS-N2ML4U"
    open_order["result"]["open"][txid]["cl_ord_id"] = "tc-cancel-me"
    recorded_venue.transport.replies.update({  # type: ignore[attr-defined]
        "/0/private/OpenOrders": open_order,
        "/0/private/CancelOrder": envelope({"count": 1}),
        "/0/private/QueryOrders": envelope({}),
    })
    await recorded_venue.cancel_order("XRP/USD", "tc-cancel-me")
    (sent,) = recorded_venue.transport.sent("/CancelOrder")  # type: ignore[attr-defined]
    assert str(sent.url) == case["url"]
    assert form(sent.content, {"nonce"}) == form(case["output"], {"nonce"})


async def test_open_orders_and_balance_urls_match(recorded_venue: KrakenExchange) -> None:
    recorded_venue.transport.replies.update({  # type: ignore[attr-defined]
        "/0/private/OpenOrders": envelope({"open": {}}),
        "/0/private/BalanceEx": envelope({}),
    })
    await recorded_venue.open_orders()
    await recorded_venue.balances()
    (open_req,) = recorded_venue.transport.sent("/OpenOrders")  # type: ignore[attr-defined]
    assert str(open_req.url) == recorded("request", "kraken", "fetchOpenOrders")["url"]
    expected = recorded("request", "kraken", "fetchOpenOrders")["output"]
    assert form(open_req.content, {"nonce"}) == form(expected, {"nonce"})
    (bal_req,) = recorded_venue.transport.sent("/BalanceEx")  # type: ignore[attr-defined]
    assert str(bal_req.url) == recorded("request", "kraken", "fetchBalance", "Fetch spot Balance")["url"]


async def test_trades_history_goes_to_the_recorded_endpoint(recorded_venue: KrakenExchange) -> None:
    recorded_venue.transport.replies["/0/private/TradesHistory"] = envelope({"trades": {}, "count": 0})  # type: ignore[attr-defined]
    await recorded_venue.fills_since("TABCDE-FGHIJ-KLMNOP")
    (sent,) = recorded_venue.transport.sent("/TradesHistory")  # type: ignore[attr-defined]
    assert str(sent.url) == recorded("request", "kraken", "fetchMyTrades")["url"]
    assert form(sent.content, {"nonce"}) == [("start", "TABCDE-FGHIJ-KLMNOP")]  # exclusive start by trade id


async def test_public_urls_match_the_recorded_requests(recorded_venue: KrakenExchange) -> None:
    t = recorded_venue.transport  # type: ignore[attr-defined]
    t.replies.update({
        "/0/public/Ticker": recorded("response", "kraken", "fetchTicker")["httpResponse"],
        "/0/public/OHLC": recorded("response", "kraken", "fetchOHLCV")["httpResponse"],
        "/0/public/Depth": envelope({"XBTUSDT": {"bids": [], "asks": []}}),
        "/0/public/Time": envelope({"unixtime": 1716523348, "rfc1123": "x"}),
    })
    await recorded_venue.ticker("BTC/USDT")
    assert str(t.sent("/Ticker")[0].url) == recorded("request", "kraken", "fetchTicker")["url"]

    since = datetime.fromtimestamp(1716523348, UTC)
    await recorded_venue.candles("BTC/USDT", 3600, since=since)
    await recorded_venue.candles("BTC/USDT", 60)
    ohlc = [str(r.url) for r in t.sent("/OHLC")]
    assert ohlc == [recorded("request", "kraken", "fetchOHLCV", "spot ohlcv with since")["url"],
                    recorded("request", "kraken", "fetchOHLCV", "spot ohlcv")["url"]]

    await recorded_venue.order_book("BTC/USDT", depth=25)
    depth = t.sent("/Depth")[0]
    expected = recorded("request", "kraken", "fetchOrderBook")["url"]
    assert depth.url.path == urlsplit(expected).path
    assert query(str(depth.url)) == {**query(expected), "count": "25"}

    await recorded_venue.rest.public("Time")
    assert str(t.sent("/Time")[0].url) == recorded("request", "kraken", "fetchTime")["url"]
