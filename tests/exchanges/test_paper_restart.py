"""A new paper venue on the same database continues where the previous one stopped."""

from __future__ import annotations

from decimal import Decimal

from exchanges.base import OrderRequest, OrderStatus, OrderType, Side
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from tests.exchanges.test_contract_paper import START, PaperController

D = Decimal
PAIR = "BTC/USD"
MARKETS = {PAIR: MarketRules()}
OPTIONS = {"slippage_bps": D(0), "impact_bps": D(0), "volume_share": D("0.1")}


async def test_balances_orders_and_fills_survive_a_restart(db: Database) -> None:
    clock = SimClock(START)
    first = PaperExchange(db, MARKETS, starting_balances={"USD": D(100000)}, clock=clock, **OPTIONS)
    await first.start()
    ctl = PaperController(first, clock)
    await ctl.candle(PAIR, D(20000), D(20000), D(20000), D(20000), D(10))
    await first.place_order(OrderRequest("rest", PAIR, Side.BUY, OrderType.LIMIT, D("0.5"), D(19000)))
    big = await first.place_order(OrderRequest("big", PAIR, Side.BUY, OrderType.MARKET, D("1.5")))
    assert big.status is OrderStatus.PARTIALLY_FILLED
    page = await first.fills_since(None)
    balances, open_orders = await first.balances(), await first.open_orders()
    await first.stop()

    second = PaperExchange(db, MARKETS, starting_balances={"USD": D(1), "EUR": D(5)}, clock=clock, **OPTIONS)
    await second.start()
    assert await second.balances() == balances  # totals and reservations, not seeded again
    assert await second.open_orders() == open_orders
    assert await second.fills_since(None) == page
    assert (await second.fills_since(page.cursor)).fills == []
    again = await second.place_order(OrderRequest("big", PAIR, Side.BUY, OrderType.MARKET, D("1.5")))
    assert again.venue_order_id == big.venue_order_id and again.filled_qty == 1

    ctl2 = PaperController(second, clock)
    await ctl2.candle(PAIR, D(20000), D(20000), D(18900), D(19000), D(10))
    assert (await second.fetch_order(PAIR, "big")).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert (await second.fetch_order(PAIR, "rest")).status is OrderStatus.FILLED  # type: ignore[union-attr]
    usd = (await second.balances())["USD"]
    assert usd.available == usd.total
    assert (await second.balances())["BTC"].total == D(2)
    new = (await second.fills_since(page.cursor)).fills
    assert {f.client_order_id for f in new} == {"big", "rest"}
