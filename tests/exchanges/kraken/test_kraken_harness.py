"""The venue harness the shared contract suite uses: adapter + fake + controller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from exchanges.base import OrderRequest, OrderStatus, OrderType, Side
from tests.exchanges.fakes import coinbase_venue, kraken_venue


@pytest.mark.parametrize("factory", [kraken_venue, coinbase_venue], ids=["kraken", "coinbase"])
async def test_controller_moves_the_market_for_either_venue(factory) -> None:  # type: ignore[no-untyped-def]
    async with await factory() as (venue, market):
        market.set_balance("USD", Decimal("10000"))
        await market.set_price("BTC/USD", Decimal("30000"))
        bought = await venue.place_order(OrderRequest("tc-h-1", "BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01")))
        assert bought.status is OrderStatus.FILLED and bought.avg_price == Decimal("30000")

        resting = await venue.place_order(OrderRequest("tc-h-2", "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                                                       Decimal("29000")))
        assert resting.status is OrderStatus.SUBMITTED
        await market.set_price("BTC/USD", Decimal("28500"))
        filled = await venue.fetch_order("BTC/USD", "tc-h-2")
        assert filled is not None and filled.status is OrderStatus.FILLED and filled.avg_price == Decimal("29000")
        fills = (await venue.fills_since(None)).fills
        assert [f.client_order_id for f in fills] == ["tc-h-1", "tc-h-2"]

        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        for i in range(3):
            market.add_candle("BTC/USD", 3600, hour + timedelta(hours=i), Decimal(1), Decimal(2), Decimal(1),
                              Decimal("1.5"), Decimal(10))
        candles = await venue.candles("BTC/USD", 3600, since=hour)
        assert [c.ts for c in candles][:2] == [hour, hour + timedelta(hours=1)]
        assert candles[0].close == Decimal("1.5")
