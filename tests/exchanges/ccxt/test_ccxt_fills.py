"""``fills_since`` through ccxt when more than one of the venue's pages of fills arrived between two
calls: Kraken and Coinbase answer newest first, so reading one page lost the older fills for good."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchanges.base import OrderRequest, OrderType, Side
from exchanges.ccxt.fills import MAX_PAGES
from tests.exchanges.ccxt.harness import ccxt_venue
from tests.exchanges.fakes import FakeCoinbase, FakeKraken

STEP = Decimal("0.00001")


@pytest.mark.parametrize(("fake", "count"), [(FakeKraken, 123), (FakeCoinbase, 230)])
async def test_more_fills_than_a_page_between_two_calls_are_all_returned_once(
        fake: type[FakeKraken] | type[FakeCoinbase], count: int) -> None:
    async with ccxt_venue(fake()) as (venue, market):
        market.set_balance("USD", Decimal(1000000))
        await market.set_price("BTC/USD", Decimal(20000))
        await venue.place_order(OrderRequest("tc-many-1", "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal(1),
                                             Decimal(19000)))
        await market.fill("tc-many-1", STEP)
        first = await venue.fills_since(None)
        assert len(first.fills) == 1
        for _ in range(count):  # Kraken pages hold 50 trades, Coinbase's 100
            await market.fill("tc-many-1", STEP)
        page = await venue.fills_since(first.cursor)
        assert len(page.fills) == count
        assert len({f.fill_id for f in page.fills}) == count and first.fills[0].fill_id not in {
            f.fill_id for f in page.fills}
        assert [f.ts for f in page.fills] == sorted(f.ts for f in page.fills)
        assert all(f.client_order_id == "tc-many-1" and f.qty == STEP for f in page.fills)
        assert (await venue.fills_since(page.cursor)).fills == []
        assert count < MAX_PAGES * 50
