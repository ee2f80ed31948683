"""Orders by hand, on the engine's side (core/trading/manual.py): a preview changes nothing, a kill that
lands while the order is being written wins, and a resting limit sell left by an earlier run still gives
way to the position's stop after a restart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import col, select

from core.trading.engine import Engine
from core.trading.entries import EntryGuard, Judge, NoEntry
from core.trading.intents import PlaceOrder
from core.trading.state import KILLED
from exchanges.base import OrderStatus
from persistence.db import Database
from persistence.models import OrderRow, PaperOrderRow, PositionRow
from tests.core.engine_rig import PAIR, Rig
from tests.core.waiting import eventually

BY = "telegram:2"


async def _orders(db: Database) -> list[OrderRow]:
    async with db.read() as s:
        return list((await s.exec(select(OrderRow).order_by(col(OrderRow.id)))).all())


async def _positions(db: Database) -> list[PositionRow]:
    async with db.read() as s:
        return list((await s.exec(select(PositionRow).order_by(col(PositionRow.id)))).all())


async def test_a_preview_prices_the_order_and_writes_nothing(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    result = await rig.engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", quote_amount=Decimal("250"),
                                                preview=True))
    q = result.quote
    assert result.ok and q is not None
    assert (q.qty, q.price, q.value, q.fee_rate, q.stop) == (Decimal("2.5"), Decimal(100), Decimal(250),
                                                             Decimal("0.0026"), Decimal(97))
    assert q.fee == Decimal("0.65") and q.total == Decimal("250.65") and not q.maker and not q.overridden
    assert await _orders(db) == [] and await _positions(db) == []
    await rig.stop()


class KilledWhileWriting(EntryGuard):
    """An entry guard during whose write a kill lands (``on_written`` runs right after it)."""

    on_written: Callable[[], None] = staticmethod(lambda: None)

    async def write(self, pair: str, judge: Judge, *, force: bool = False) -> tuple[PositionRow, OrderRow] | NoEntry:
        written = await super().write(pair, judge, force=force)
        self.on_written()
        return written


class KillRig(Rig):
    def build(self) -> Engine:
        engine = super().build()
        self.guard = KilledWhileWriting(executor=engine.executor, books=engine.books, market_data=engine.md,
                                        states=engine.states)
        engine.entries = engine.manual.entries = self.guard
        return engine


async def test_a_kill_that_lands_while_the_order_is_written_wins(db: Database) -> None:
    rig = KillRig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    engine = rig.engine
    rig.guard.on_written = lambda: engine.states.hold(KILLED, "kill from chat", "telegram:1", datetime.now(UTC))
    result = await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=Decimal(2)))
    assert not result.ok and "killed before the order was sent" in result.message
    (order,) = await _orders(db)
    (pos,) = await _positions(db)
    assert order.status == OrderStatus.CANCELLED and pos.status == "void"  # written first, then abandoned
    async with db.read() as s:
        assert (await s.exec(select(PaperOrderRow))).all() == []  # the venue never heard of it
    await rig.stop()


async def test_a_resting_limit_sell_from_an_earlier_run_gives_way_to_the_stop(db: Database) -> None:
    first = Rig(db)
    await first.start()
    for _ in range(3):
        await first.candle("100")
    bought = await first.engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=Decimal(2)))
    resting = await first.engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="sell", qty=Decimal(2),
                                                   limit_price=Decimal(105)))
    assert bought.ok and resting.ok and resting.orders[0].status == OrderStatus.SUBMITTED
    await first.stop()

    second = Rig(db, clock=first.clock)  # a restart: the resting sell is known only from the database
    second.bars = dict(first.bars)
    await second.start()
    await second.candle("96", low="96")  # below the stop at 97

    async def closed() -> bool:
        await second.engine.executor.poll_fills()
        return [p.status for p in await _positions(db)] == ["closed"]

    await eventually(closed, what="the stop exit")
    assert [(o.purpose, o.status) for o in await _orders(db)] == [
        ("entry", OrderStatus.FILLED), ("close", OrderStatus.CANCELLED), ("stop", OrderStatus.FILLED)]
    await second.stop()
