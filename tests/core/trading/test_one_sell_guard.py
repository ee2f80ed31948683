"""Every sell of a position goes through one guard (core/trading/sells.py): a /sell, a stop, a /close, the
kill and a second process racing for the same position never sell more than it holds.

The account holds coins of its own beside the engine's position (the operator's savings): the venue
would take a second sell and sell those, so the database is the only thing that can stop it. The
invariant is checked from the database: for each position, what its sells filled plus what their live
ones still have to sell never exceeds what was bought.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading.engine import Engine
from core.trading.executor import Executor
from core.trading.intents import ClosePosition, Kill, PlaceOrder, RemovePair
from core.trading.market_data import MarketData
from core.trading.risk import RiskManager
from core.trading.sells import SellAsk, write_sells
from core.trading.state import StateStore
from core.trading.values import OPEN_STATES, OrderPurpose
from exchanges.base import Order, OrderRequest, OrderStatus
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from persistence.models import OrderRow, PositionRow
from tests.core.engine_rig import PAIR, Rig, _idle_feed
from tests.core.waiting import eventually

BY = "telegram:2"
D = Decimal


class Meeting:
    """Holds each write transaction just before its commit until a second one is held too (or a
    moment has passed): two writers that can both check before either commits do so. A writer the
    database makes wait (a row lock, SQLite's write lock) never arrives, and the first goes on alone."""

    def __init__(self) -> None:
        self.armed = False
        self.arrived = 0
        self.met = asyncio.Event()

    def arm(self) -> None:
        self.armed, self.arrived, self.met = True, 0, asyncio.Event()

    async def meet(self) -> None:
        if not self.armed:
            return
        self.arrived += 1
        if self.arrived >= 2:
            self.met.set()
        try:
            await asyncio.wait_for(self.met.wait(), 0.3)
        except TimeoutError:
            pass


class MeetingExecutor(Executor):
    """Write transactions meet (see :class:`Meeting`), and after each commit the invariant is checked:
    a breach that lasts only until a cancel is recorded is still a breach (that sell may fill)."""

    meeting = Meeting()
    breaches: list[str]

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        async with super().writing() as s:
            yield s
            await s.flush()
            await self.meeting.meet()
        self.breaches.extend(await _oversold(self.db))


class SlowCancelPaper(PaperExchange):
    """While ``hold_cancels`` is set, the venue answers a cancel only once the next market sell has reached it
    (at most 5 s): a venue slower to cancel than to take an order, so what the kill does beside a working
    sell is seen whatever the event loop's order of the two calls."""

    hold_cancels: asyncio.Event | None = None

    async def place_order(self, request: OrderRequest) -> Order:
        order = await super().place_order(request)
        if self.hold_cancels is not None and request.side == "sell" and request.limit_price is None:
            self.hold_cancels.set()
        return order

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        if self.hold_cancels is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hold_cancels.wait(), 5)
        return await super().cancel_order(pair, client_order_id)


class SavingsRig(Rig):
    """The rig's engine, on an account that also holds 50 BTC of the operator's own."""

    def build(self) -> Engine:
        s = self.settings
        self.paper = SlowCancelPaper(self.db, {p: MarketRules() for p in self.pairs},
                                   starting_balances={"USD": D(100000), "BTC": D(50)},
                                   slippage_bps=D(0), impact_bps=D(0), clock=self.clock, timeframe_s=3600)
        self.executor = MeetingExecutor(self.db, self.paper, self.events, self.clock, backoff_s=0.01)
        self.executor.meeting, self.executor.breaches = Meeting(), []
        self.engine = Engine(db=self.db, exchange=self.paper, feed=_idle_feed(), market_data=MarketData(3600),
                             evaluate=self.strategy, risk=RiskManager(s.risk), executor=self.executor,
                             state=StateStore(self.db, "default"), clock=self.clock, events=self.events,
                             trading=s.trading, timezone="UTC", mode="paper",
                             market_hooks=(self.paper.on_market_event,))
        return self.engine


async def _oversold(db: Database) -> list[str]:
    """Positions whose sells (filled, plus what live ones still have to sell) exceed what was bought."""
    async with db.read() as s:
        positions = (await s.exec(select(PositionRow))).all()
        sells = (await s.exec(select(OrderRow).where(OrderRow.side == "sell"))).all()
    out = []
    for p in positions:
        mine = [o for o in sells if o.position_id == p.id]
        sold = sum((o.filled_qty for o in mine), D(0))
        live = sum((o.qty - o.filled_qty for o in mine if o.status in OPEN_STATES), D(0))
        if sold + live > p.entry_qty:
            out.append(f"#{p.id}: bought {p.entry_qty}, sold {sold}, live {live}: "
                       + ", ".join(f"{o.purpose} {o.qty} {o.status}" for o in mine))
    return out


async def _open_one(rig: SavingsRig, qty: str = "2") -> None:
    bought = await rig.engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=D(qty), force=True))
    assert bought.ok, bought.message


async def _settled(rig: SavingsRig) -> None:
    async def nothing_live() -> bool:
        await rig.engine.executor.poll_fills()
        return not await rig.engine.executor.open_orders()
    await eventually(nothing_live, what="every order final")


async def test_a_sell_and_a_stop_at_the_same_moment_sell_the_position_once(db: Database) -> None:
    rig = SavingsRig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    engine, meeting = rig.engine, rig.executor.meeting
    for round_ in range(4):
        await _open_one(rig)
        pos = await engine.exits.open_position(PAIR)
        assert pos is not None and pos.status == "open"
        meeting.arm()
        # /sell of the whole position, and the protection loop seeing the price below the stop (97)
        await asyncio.gather(
            engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="sell", qty=D(2))),
            engine.exits.protect(PAIR, low=D(90)) if round_ % 2 else engine.exits.exit_position(
                pos, purpose=OrderPurpose.STOP, reason="price 90 <= stop 97", by="protection"))
        meeting.armed = False
        await _settled(rig)
        assert await _oversold(db) == [] and rig.executor.breaches == []
        assert await engine.exits.open_position(PAIR) is None  # sold once, by one of them
    await rig.stop()


async def test_close_and_pairs_remove_racing_a_stop_or_a_sell_never_oversell(db: Database) -> None:
    rig = SavingsRig(db, pairs=(PAIR, "ETH/USD"))
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    engine, meeting = rig.engine, rig.executor.meeting

    await _open_one(rig)
    meeting.arm()
    await asyncio.gather(engine.submit(ClosePosition(requested_by=BY, pair=PAIR)),
                         engine.exits.exit_position(await _pos(engine), purpose=OrderPurpose.STOP,
                                                    reason="stop", by="protection"))
    meeting.armed = False
    await _settled(rig)
    assert await _oversold(db) == [] and rig.executor.breaches == []

    await _open_one(rig)
    meeting.arm()
    await asyncio.gather(engine.submit(RemovePair(requested_by=BY, pair=PAIR, then="close")),
                         engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="sell", qty=D(2))))
    meeting.armed = False
    await _settled(rig)
    assert await _oversold(db) == [] and rig.executor.breaches == []
    await rig.stop()


async def _pos(engine: Engine) -> PositionRow:
    pos = await engine.exits.open_position(PAIR)
    assert pos is not None
    return pos


async def test_the_kill_never_sells_again_what_a_filled_but_unread_exit_sold(db: Database) -> None:
    rig = SavingsRig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    engine = rig.engine
    await _open_one(rig)
    # the stop's market sell reached the venue and filled there; its fill is not read yet when /kill lands
    (stop,) = await write_sells(engine.executor, [SellAsk(position_id=(await _pos(engine)).id or 0,
                                                          purpose=OrderPurpose.STOP, reason="stop", by="protection")],
                                engine.markets)
    assert isinstance(stop, OrderRow)
    await engine.executor.send(stop)
    assert stop.status == OrderStatus.SUBMITTED
    result = await engine.submit(Kill(requested_by="telegram:1", reason="test"))
    assert result.ok, result.message
    await _settled(rig)
    assert await _oversold(db) == [] and rig.executor.breaches == []
    async with db.read() as s:
        kills = (await s.exec(select(OrderRow).where(OrderRow.purpose == OrderPurpose.KILL))).all()
        (pos,) = (await s.exec(select(PositionRow))).all()
    assert kills == [] and (pos.status, pos.exit_qty) == ("closed", D(2))  # the stop sold it; nothing more
    assert result.cancelled == () and any(line.startswith("filled before it could be cancelled: sell 2 BTC/USD (stop")
                                          for line in result.details), result.details
    assert result.acknowledged_s is not None and result.flat_s is not None
    await rig.stop()


async def test_the_kill_sells_what_a_resting_sell_leaves_and_the_rest_once_it_is_cancelled(db: Database) -> None:
    rig = SavingsRig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    engine = rig.engine
    await _open_one(rig)
    resting = await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="sell", qty=D(1), limit_price=D(104)))
    assert resting.ok and resting.orders[0].status == OrderStatus.SUBMITTED
    rig.paper.hold_cancels = asyncio.Event()  # the resting sell's cancel is answered after the kill's first sell
    result = await engine.submit(Kill(requested_by="telegram:1", reason="test"))
    assert result.ok, result.message
    await _settled(rig)
    assert await _oversold(db) == [] and rig.executor.breaches == []
    async with db.read() as s:
        kills = (await s.exec(select(OrderRow).where(OrderRow.purpose == OrderPurpose.KILL))).all()
        (pos,) = (await s.exec(select(PositionRow))).all()
    assert sum((o.filled_qty for o in kills), D(0)) == D(2) and pos.status == "closed"  # flat, not a coin more
    assert len(kills) == 2  # 1 beside the resting sell, 1 once its cancel was confirmed
    assert result.acknowledged_s is not None and result.flat_s is not None
    await rig.stop()


async def test_two_processes_racing_for_one_position_write_one_sell(db: Database) -> None:
    """Two engines overlapping during a leadership hand-over (the old leader's loop stalled past its
    step-down): each has its own connections; the database lets only one sell through."""
    rig = SavingsRig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    await _open_one(rig)
    pos = await _pos(rig.engine)
    assert pos.id is not None
    other_db = Database(db.url, schema=db.schema)
    await other_db.start()
    meeting = Meeting()
    here = MeetingExecutor(db, rig.paper, rig.events, rig.clock)
    there = MeetingExecutor(other_db, rig.paper, rig.events, rig.clock)
    for executor in (here, there):
        executor.meeting, executor.breaches = meeting, []
    meeting.arm()
    answers = await asyncio.gather(*(write_sells(ex, [SellAsk(position_id=pos.id, purpose=purpose, reason="race",
                                                              by="test")], rig.engine.markets)
                                     for ex, purpose in ((here, OrderPurpose.STOP), (there, OrderPurpose.CLOSE))))
    await other_db.stop()
    written = [a for (a,) in answers if isinstance(a, OrderRow)]
    assert len(written) == 1 and await _oversold(db) == []
    await rig.stop()
