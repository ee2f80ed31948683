"""The paper venue's execution model: slippage and impact, partial fills, fees, limit crossing,
latency, zero-volume candles. Venue-agnostic behaviour is in the shared contract suite."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.base import Candle, OrderRequest, OrderStatus, OrderType, Side
from exchanges.clock import SimClock
from exchanges.errors import InsufficientFunds, InvalidOrder, TemporaryError
from exchanges.paper import MarketRules, PaperExchange
from exchanges.paper.book import PaperBook
from exchanges.paper.model import BalanceState
from persistence.db import Database
from tests.exchanges.test_contract_paper import START, PaperController, paper_venue

D = Decimal
PAIR = "BTC/USD"
RULES = {PAIR: MarketRules(maker_fee=D("0.001"), taker_fee=D("0.002"))}


def market(cid: str, side: Side, qty: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, pair=PAIR, side=side, type=OrderType.MARKET, qty=D(qty))


def limit(cid: str, side: Side, qty: str, price: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, pair=PAIR, side=side, type=OrderType.LIMIT, qty=D(qty),
                        limit_price=D(price))


async def flat(ctl: PaperController, price: str, volume: str) -> None:
    p = D(price)
    await ctl.candle(PAIR, p, p, p, p, D(volume))


async def fills_of(paper: PaperExchange, cid: str) -> list:
    return [f for f in (await paper.fills_since(None)).fills if f.client_order_id == cid]


async def test_slippage_is_bps_plus_impact_growing_with_size(sqlite_db: Database) -> None:
    async with paper_venue(sqlite_db, markets=RULES, starting_balances={"USD": D(10**6), "BTC": D(20)},
                           slippage_bps=D(10), impact_bps=D(100), volume_share=D(1)) as (paper, ctl):
        await flat(ctl, "20000", "100")
        small = await paper.place_order(market("b1", Side.BUY, "1"))
        large = await paper.place_order(market("b10", Side.BUY, "10"))
        sold = await paper.place_order(market("s1", Side.SELL, "1"))
        assert small.avg_price == D("20022")   # 10 bps + 100 bps * 1/100
        assert large.avg_price == D("20040")   # 10 bps + 100 bps * 10/100
        assert sold.avg_price == D("19978")    # against the seller
        assert [f.liquidity for f in await fills_of(paper, "b1")] == ["taker"]


async def test_order_larger_than_volume_share_fills_across_candles(sqlite_db: Database) -> None:
    async with paper_venue(sqlite_db, markets=RULES, starting_balances={"USD": D(100000)},
                           slippage_bps=D(10), impact_bps=D(0), volume_share=D("0.1")) as (paper, ctl):
        await flat(ctl, "20000", "10")  # 1 BTC may fill per candle
        order = await paper.place_order(market("big", Side.BUY, "2.5"))
        assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == 1
        assert (await paper.balances())["USD"].available < (await paper.balances())["USD"].total
        await ctl.candle(PAIR, D(20100), D(20300), D(20000), D(20200), D(10))
        assert (await paper.fetch_order(PAIR, "big")).filled_qty == 2  # type: ignore[union-attr]
        await ctl.candle(PAIR, D(20200), D(20300), D(20100), D(20250), D(10))
        done = await paper.fetch_order(PAIR, "big")
        assert done is not None and done.status is OrderStatus.FILLED and done.filled_qty == D("2.5")
        fills = await fills_of(paper, "big")
        assert [(f.qty, f.price) for f in fills] == [(1, D("20020")), (1, D("20120.1")), (D("0.5"), D("20220.2"))]
        assert all(f.fee == f.qty * f.price * D("0.002") for f in fills)
        assert done.fee == sum(f.fee for f in fills)
        assert done.avg_price == sum(f.qty * f.price for f in fills) / D("2.5")
        usd = (await paper.balances())["USD"]
        assert usd.total == usd.available == D(100000) - sum(f.qty * f.price + f.fee for f in fills)


async def test_maker_fee_for_resting_limits_taker_fee_for_market_orders(sqlite_db: Database) -> None:
    async with paper_venue(sqlite_db, markets=RULES, slippage_bps=D(0), impact_bps=D(0),
                           starting_balances={"USD": D(100000)}) as (paper, ctl):
        await flat(ctl, "20000", "100")
        await paper.place_order(limit("lim", Side.BUY, "0.5", "19900"))
        await ctl.candle(PAIR, D(20000), D(20000), D(19850), D(19950), D(100))
        [maker] = await fills_of(paper, "lim")
        assert (maker.price, maker.fee, maker.liquidity) == (D(19900), D("9.95"), "maker")
        await paper.place_order(market("mkt", Side.BUY, "0.5"))
        [taker] = await fills_of(paper, "mkt")
        assert (taker.price, taker.fee, taker.liquidity) == (D(19950), D("19.95"), "taker")


async def test_limit_crossing_rules(sqlite_db: Database) -> None:
    async with paper_venue(sqlite_db, markets=RULES, slippage_bps=D(10), impact_bps=D(0),
                           starting_balances={"USD": D(100000), "BTC": D(5)}) as (paper, ctl):
        await flat(ctl, "20000", "100")
        await paper.place_order(limit("buy", Side.BUY, "0.1", "19900"))
        await paper.place_order(limit("sell", Side.SELL, "0.1", "20100"))
        await ctl.candle(PAIR, D(20000), D(20099), D(19901), D(20000), D(100))  # touches neither
        assert {o.client_order_id for o in await paper.open_orders()} == {"buy", "sell"}
        await ctl.candle(PAIR, D(19500), D(19600), D(19400), D(19500), D(100))  # gaps through the buy
        await ctl.candle(PAIR, D(20500), D(20600), D(20400), D(20500), D(100))  # gaps through the sell
        assert (await fills_of(paper, "buy"))[0].price == D(19900)  # at the limit, no price improvement
        assert (await fills_of(paper, "sell"))[0].price == D(20100)
        # already marketable when placed: fills at once as a taker, at the limit or better
        better = await paper.place_order(limit("mbuy", Side.BUY, "0.1", "21000"))
        capped = await paper.place_order(limit("cbuy", Side.BUY, "0.1", "20505"))
        assert better.avg_price == D("20520.5") and capped.avg_price == D(20505)
        assert (await fills_of(paper, "mbuy"))[0].liquidity == "taker"


async def test_next_open_mode_fills_market_orders_on_the_following_candle(sqlite_db: Database) -> None:
    async with paper_venue(sqlite_db, markets=RULES, fill_on="next_open", slippage_bps=D(10), impact_bps=D(0),
                           starting_balances={"USD": D(100000)}) as (paper, ctl):
        await flat(ctl, "20000", "100")
        order = await paper.place_order(market("m", Side.BUY, "0.1"))
        assert order.status is OrderStatus.SUBMITTED and order.filled_qty == 0
        await ctl.candle(PAIR, D(20100), D(20200), D(20000), D(20150), D(100))
        assert [f.price for f in await fills_of(paper, "m")] == [D("20120.1")]


async def test_zero_volume_candles_fill_nothing(sqlite_db: Database) -> None:
    async with paper_venue(sqlite_db, markets=RULES, slippage_bps=D(0), impact_bps=D(50),
                           starting_balances={"USD": D(100000)}) as (paper, ctl):
        await flat(ctl, "20000", "0")
        order = await paper.place_order(market("m", Side.BUY, "0.1"))
        await paper.place_order(limit("l", Side.BUY, "0.1", "19990"))
        assert order.status is OrderStatus.SUBMITTED and order.filled_qty == 0
        book = await paper.order_book(PAIR)
        assert all(q == 0 for _, q in book.bids + book.asks)
        await ctl.candle(PAIR, D(20000), D(20000), D(19000), D(19000), D(0))  # crosses, but no trades
        assert (await paper.fills_since(None)).fills == []
        await ctl.candle(PAIR, D(20050), D(20100), D(19950), D(20000), D(10))
        assert [f.price for f in await fills_of(paper, "m")] == [D("20051.01")]  # 50 bps * 0.1/10, tick up
        assert [f.price for f in await fills_of(paper, "l")] == [D(19990)]


@pytest.mark.parametrize("jump", [
    "5000",  # the candle's share alone costs more than the account holds: fills what it can pay
    "2800",  # the candle's share is affordable, the rest of the order no longer is
])
async def test_market_buy_no_longer_affordable_is_cancelled_for_the_rest(sqlite_db: Database, jump: str) -> None:
    async with paper_venue(sqlite_db, markets=RULES, slippage_bps=D(0), impact_bps=D(0), volume_share=D("0.1"),
                           starting_balances={"USD": D(3000)}) as (paper, ctl):
        await flat(ctl, "1000", "1")
        with pytest.raises(InsufficientFunds):
            await paper.place_order(market("huge", Side.BUY, "3"))
        await paper.place_order(market("m", Side.BUY, "2"))  # 0.1 fills now, the rest waits
        await flat(ctl, jump, "10")
        order = await paper.fetch_order(PAIR, "m")
        assert order is not None and order.status is OrderStatus.CANCELLED
        assert D("0.1") < order.filled_qty < D(2) and "insufficient funds" in order.reject_reason
        usd = (await paper.balances())["USD"]
        assert D(0) <= usd.total < D(100) and usd.available == usd.total


async def test_latency_applies_to_every_call_but_concurrent_calls_overlap(sqlite_db: Database) -> None:
    venue = paper_venue(sqlite_db, markets=RULES, latency_ms=200, starting_balances={"USD": D(10**6)})
    async with venue as (paper, ctl):
        await flat(ctl, "20000", "100")
        t0 = time.monotonic()
        await paper.balances()
        assert time.monotonic() - t0 >= 0.19
        calls = [paper.place_order(limit(f"o{i % 30}", Side.BUY, "0.01", "19000")) for i in range(40)]
        calls += [paper.balances() for _ in range(5)] + [paper.ticker(PAIR) for _ in range(5)]
        t0 = time.monotonic()
        await asyncio.gather(*calls)
        # 50 calls x 200 ms would be 10 s if they queued; the bound leaves room for a loaded machine
        assert time.monotonic() - t0 < 4.0
        assert len(await paper.open_orders()) == 30  # repeated client ids made no second order


_prices = st.integers(min_value=500, max_value=3000)
_ops = st.lists(st.one_of(
    st.tuples(st.just("candle"), _prices, _prices, st.sampled_from(["0", "0.5", "5", "50"])),
    st.tuples(st.just("market"), st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from(["0.01", "0.3", "2", "7"])),
    st.tuples(st.just("limit"), st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from(["0.01", "0.3", "2"]), _prices),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=20)),
), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops=_ops)
def test_random_trading_never_overspends_and_conserves_money(ops: list[tuple]) -> None:
    clock = SimClock(START)
    rules = MarketRules(maker_fee=D("0.001"), taker_fee=D("0.002"))
    book = PaperBook({PAIR: rules.market(PAIR)}, slippage_bps=D(10), impact_bps=D(50), volume_share=D("0.2"),
                     clock=clock, history=50)
    book.reset({"USD": BalanceState(D(10000)), "BTC": BalanceState(D(3))}, [])
    fills, orders, ts = [], [], START
    for op in ops:
        if op[0] == "candle":
            o, c = D(op[1]), D(op[2])
            clock.advance_to(ts + timedelta(hours=1))
            result = book.on_candle(Candle(PAIR, 3600, ts, o, max(o, c) + 5, min(o, c) - 5, c, D(op[3])))
            fills += result[1] if result else []
            ts += timedelta(hours=1)
        elif op[0] == "cancel":
            if op[1] < len(orders) and not orders[op[1]].status.is_final:
                book.cancel(orders[op[1]])
        else:
            price = None if op[0] == "market" else D(op[3])
            request = OrderRequest(f"o{len(orders)}-{op}", PAIR, op[1],
                                   OrderType.MARKET if price is None else OrderType.LIMIT, D(op[2]), price)
            try:
                order = book.new_order(request)
            except (InvalidOrder, TemporaryError):
                continue
            fills += book.add(order, fill_now=True)
            orders.append(order)
        for bal in book.balances.values():
            assert bal.total >= 0 and D(0) <= bal.locked <= bal.total
    bought = sum((f.qty if f.side is Side.BUY else -f.qty) for f in fills)
    paid = sum((f.qty * f.price if f.side is Side.BUY else -f.qty * f.price) + f.fee for f in fills)
    assert book.balances["BTC"].total == 3 + bought
    assert book.balances["USD"].total == 10000 - paid
    for order in orders:
        assert 0 <= order.filled_qty <= order.qty
        mine = [f for f in fills if f.client_order_id == order.client_order_id]
        assert order.filled_qty == sum(f.qty for f in mine) and order.fee == sum(f.fee for f in mine)
