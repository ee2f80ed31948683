"""A new paper venue on the same database continues where the previous one stopped."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from exchanges.base import Candle, OrderRequest, OrderStatus, OrderType, Side
from exchanges.clock import SimClock
from exchanges.errors import TemporaryError
from exchanges.paper import MarketRules, PaperExchange
from exchanges.paper.store import MemoryPaperStore
from persistence.db import Database
from persistence.models import PaperOrderRow
from tests.exchanges.test_contract_paper import START, PaperController
from tests.persistence.outage import TablesAway

D = Decimal
PAIR = "BTC/USD"
MARKETS = {PAIR: MarketRules()}
OPTIONS = {"slippage_bps": D(0), "impact_bps": D(0), "volume_share": D("0.1")}


@pytest.mark.parametrize("in_memory", [False, True], ids=["database", "memory"])
async def test_balances_orders_and_fills_survive_a_restart(db: Database, in_memory: bool) -> None:
    """On the database's tables, or on one :class:`MemoryPaperStore` (which a backtest's venue uses;
    there the "restart" is a second venue on the same store)."""
    store = MemoryPaperStore() if in_memory else None
    clock = SimClock(START)
    first = PaperExchange(db, MARKETS, starting_balances={"USD": D(100000)}, clock=clock, store=store, **OPTIONS)
    await first.start()
    ctl = PaperController(first, clock)
    await ctl.candle(PAIR, D(20000), D(20000), D(20000), D(20000), D(10))
    await first.place_order(OrderRequest("rest", PAIR, Side.BUY, OrderType.LIMIT, D("0.5"), D(19000)))
    big = await first.place_order(OrderRequest("big", PAIR, Side.BUY, OrderType.MARKET, D("1.5")))
    assert big.status is OrderStatus.PARTIALLY_FILLED
    page = await first.fills_since(None)
    balances, open_orders = await first.balances(), await first.open_orders()
    await first.stop()

    second = PaperExchange(db, MARKETS, starting_balances={"USD": D(1), "EUR": D(5)}, clock=clock, store=store,
                           **OPTIONS)
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
    if in_memory:
        async with db.read() as s:
            assert (await s.exec(select(PaperOrderRow))).all() == []  # nothing went to the database


async def test_a_candle_fed_again_after_a_crash_fills_nothing_twice(db: Database) -> None:
    """The consumer died after the venue stored a candle's fills but before it recorded the candle
    as processed; after the restart the same candle is fed again."""
    clock = SimClock(START)
    first = PaperExchange(db, MARKETS, starting_balances={"USD": D(100000)}, clock=clock, **OPTIONS)
    await first.start()
    ctl = PaperController(first, clock)
    await ctl.candle(PAIR, D(20000), D(20000), D(20000), D(20000), D(10))
    big = await first.place_order(OrderRequest("big", PAIR, Side.BUY, OrderType.MARKET, D(3)))
    assert big.filled_qty == 1  # a tenth of the last candle's volume, at once
    second_candle = await ctl.candle(PAIR, D(20000), D(20000), D(20000), D(20000), D(10))
    assert (await first.fetch_order(PAIR, "big")).filled_qty == 2  # type: ignore[union-attr]

    again = PaperExchange(db, MARKETS, starting_balances={"USD": D(100000)}, clock=clock, **OPTIONS)
    await again.start()
    with pytest.raises(TemporaryError):  # no price before a candle
        await again.place_order(OrderRequest("probe", PAIR, Side.BUY, OrderType.MARKET, D("0.01")))
    await again.on_candle(second_candle)  # the same candle again: its price, none of its volume
    assert (await again.fetch_order(PAIR, "big")).filled_qty == 2  # type: ignore[union-attr]
    assert len((await again.fills_since(None)).fills) == 2
    extra = await again.place_order(OrderRequest("extra", PAIR, Side.BUY, OrderType.MARKET, D(1)))
    assert extra.filled_qty == 0  # the candle's share was used up before the crash
    ctl2 = PaperController(again, clock)
    ctl2.next_ts = second_candle.ts + timedelta(hours=1)
    await ctl2.candle(PAIR, D(20000), D(20000), D(20000), D(20000), D(10))
    filled = {f.client_order_id: f.qty for f in (await again.fills_since(None)).fills[2:]}
    assert sum(filled.values()) == 1  # the next candle's share, once


async def test_a_candle_whose_fills_could_not_be_stored_is_matched_again(db: Database) -> None:
    clock = SimClock(START)
    paper = PaperExchange(db, MARKETS, starting_balances={"USD": D(100000)}, clock=clock, history=1,  # a full history
                          **OPTIONS)
    await paper.start()
    ctl = PaperController(paper, clock)
    await ctl.candle(PAIR, D(20000), D(20000), D(20000), D(20000), D(10))
    await paper.place_order(OrderRequest("big", PAIR, Side.BUY, OrderType.MARKET, D(3)))
    candle = Candle(PAIR, 3600, START + timedelta(hours=1), D(20000), D(20000), D(20000), D(20000), D(10))
    clock.advance_to(candle.ts + timedelta(hours=1))
    async with TablesAway(db, "paper_fills") as away:
        await away.start()
        with pytest.raises(TemporaryError) as failed:
            await paper.on_candle(candle)
        assert failed.value.__cause__ is not None  # the database's own error, for the caller to judge
    await paper.on_candle(candle)  # the database is back: the same candle matches again
    assert (await paper.fetch_order(PAIR, "big")).filled_qty == 2  # type: ignore[union-attr]
    assert [f.qty for f in (await paper.fills_since(None)).fills] == [D(1), D(1)]
