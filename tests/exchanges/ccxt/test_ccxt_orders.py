"""Client order ids through ccxt: sent to the venue where ccxt supports them (found again after a
restart), the documented in-memory fallback where not; ambiguous submits looked up, never doubled."""

from __future__ import annotations

from decimal import Decimal

from exchanges.base import OrderRequest, OrderStatus, OrderType, Side
from exchanges.ccxt.catalog import client_id_param, exchange_class, has_client_ids
from tests.exchanges.ccxt.harness import ccxt_for, ccxt_venue
from tests.exchanges.fakes import FakeCoinbase, FakeKraken


def limit(cid: str, price: str = "16000") -> OrderRequest:
    return OrderRequest(cid, "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.001"), Decimal(price))


def test_the_catalog_knows_which_classes_send_client_ids() -> None:
    assert has_client_ids(exchange_class("kraken")) and has_client_ids(exchange_class("binanceus"))  # inherited
    assert client_id_param(exchange_class("coinbase")) == "client_order_id"  # ccxt drops the unified name there
    assert client_id_param(exchange_class("kraken")) == "clientOrderId"
    assert not has_client_ids(exchange_class("bequant"))


async def test_kraken_receives_our_id_and_a_new_process_finds_the_order_by_it() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        market.set_balance("USD", Decimal(100000))
        await market.set_price("BTC/USD", Decimal(20000))
        placed = await venue.place_order(limit("tc0123456789abcdef"))
        assert market.fake.order_by_client_id("tc0123456789abcdef") is not None  # sent as cl_ord_id
        restarted = ccxt_for(market.fake)
        try:
            found = await restarted.fetch_order("BTC/USD", "tc0123456789abcdef")
            assert found is not None and found.venue_order_id == placed.venue_order_id
            again = await restarted.place_order(limit("tc0123456789abcdef"))
            assert again.venue_order_id == placed.venue_order_id and len(market.fake.orders) == 1
        finally:
            await restarted.stop()


async def test_coinbase_receives_our_id_not_ccxts_own() -> None:
    async with ccxt_venue(FakeCoinbase()) as (venue, market):
        market.set_balance("USD", Decimal(100000))
        await market.set_price("BTC/USD", Decimal(20000))
        await venue.place_order(limit("tc00000000000000aa"))
        assert market.fake.order_by_client_id("tc00000000000000aa") is not None


async def test_without_client_ids_the_venue_id_is_remembered_in_this_process_only() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        venue.client_ids = False  # as on an exchange whose ccxt class sends no client id
        market.set_balance("USD", Decimal(100000))
        await market.set_price("BTC/USD", Decimal(20000))
        first = await venue.place_order(limit("tc-fallback-1"))
        second = await venue.place_order(limit("tc-fallback-1"))
        assert second.venue_order_id == first.venue_order_id and len(market.fake.orders) == 1
        assert "cl_ord_id" not in dict(c for c in market.fake.calls if c[0] == "AddOrder")[("AddOrder")]
        found = await venue.fetch_order("BTC/USD", "tc-fallback-1")
        assert found is not None and found.client_order_id == "tc-fallback-1"
        cancelled = await venue.cancel_order("BTC/USD", "tc-fallback-1")
        assert cancelled.status is OrderStatus.CANCELLED
        restarted = ccxt_for(market.fake)
        restarted.client_ids = False
        try:  # the documented limit of the fallback: a new process cannot find it by our id
            assert await restarted.fetch_order("BTC/USD", "tc-fallback-1") is None
        finally:
            await restarted.stop()


async def test_a_lost_answer_is_looked_up_not_resubmitted() -> None:
    async with ccxt_venue(FakeKraken(), request_timeout_s=0.3) as (venue, market):
        market.set_balance("USD", Decimal(100000))
        await market.set_price("BTC/USD", Decimal(20000))
        market.fake.inject("AddOrder", "accept_then_timeout", delay_s=0.6)
        order = await venue.place_order(limit("tc-lost-answer-1"))
        assert market.fake.count("AddOrder") == 1 and len(market.fake.orders) == 1
        assert order.client_order_id == "tc-lost-answer-1" and not order.status.is_final


async def test_a_partly_filled_limit_order_reads_as_partially_filled_with_its_fills() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        market.set_balance("USD", Decimal(100000))
        await market.set_price("BTC/USD", Decimal(20000))
        await venue.place_order(limit("tc-partial-1", "19000"))
        await market.fill("tc-partial-1", Decimal("0.0004"))
        order = await venue.fetch_order("BTC/USD", "tc-partial-1")
        assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED
        assert order.filled_qty == Decimal("0.0004") and order.avg_price == Decimal("19000")
        page = await venue.fills_since(None)
        assert [(f.client_order_id, f.qty, f.price, f.liquidity) for f in page.fills] == [
            ("tc-partial-1", Decimal("0.0004"), Decimal("19000"), "maker")]
        assert (await venue.fills_since(page.cursor)).fills == []
