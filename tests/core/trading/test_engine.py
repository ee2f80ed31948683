"""The engine on the real paper venue and database: trades, stops, pause, kill, restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

from sqlmodel import select

from core.trading.events import EngineError, ReconcileDifference
from core.trading.executor import Executor, OrderSpec
from core.trading.intents import ClosePosition, Kill, PauseEntries, Rearm, Resume
from core.trading.state import TradingStatus
from core.trading.values import OrderPurpose
from exchanges.base import OrderType, Side
from persistence.db import Database
from persistence.models import OrderRow, PaperOrderRow, PositionRow
from tests.core.engine_rig import PAIR, Rig, ScriptedStrategy
from tests.core.waiting import eventually


async def positions(db: Database) -> list[PositionRow]:
    async with db.session() as s:
        return list((await s.exec(select(PositionRow).order_by(PositionRow.id))).all())  # type: ignore[arg-type]


async def test_entry_and_exit_realize_pnl_net_of_both_fees(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy", 6: "sell"}))
    await rig.start()
    for close in ["100", "100", "100", "104", "108", "110"]:
        await rig.candle(close)
    (pos,) = await positions(db)
    assert pos.status == "closed"
    assert pos.entry_fees > 0 and pos.exit_fees > 0
    assert pos.realized_pnl == pos.exit_value - pos.entry_cost - pos.entry_fees - pos.exit_fees
    # entry at 100 (bar 3's close), exit at 110: a gain after fees
    assert pos.entry_cost / pos.entry_qty == Decimal(100)
    assert pos.exit_value / pos.exit_qty == Decimal(110)
    assert pos.realized_pnl > 0
    kinds = rig.kinds()
    assert "position_opened" in kinds and "position_closed" in kinds
    summary = await rig.engine.pnl("all")
    assert summary.trades == 1 and summary.realized == pos.realized_pnl.quantize(Decimal("0.01"))
    await rig.stop()


async def test_stop_loss_fires_on_the_candle_low_and_exits_are_managed_while_paused(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    res = await rig.engine.submit(PauseEntries(requested_by="console:local"))
    assert res.ok
    await rig.candle("95", low="89")  # stop suggested at 90
    (pos,) = await positions(db)
    assert pos.status == "closed" and pos.exit_reason == "stop"
    assert rig.engine.state.state == "paused"
    await rig.stop()


async def test_paused_engine_opens_nothing_and_resume_restores(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy", 5: "buy"}))
    await rig.start()
    await rig.engine.submit(PauseEntries(requested_by="telegram:1"))
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    assert await positions(db) == [] or all(p.status == "void" for p in await positions(db))
    assert (await rig.engine.submit(Resume(requested_by="telegram:1"))).ok
    await rig.candle("100")
    await rig.candle("100")
    assert [p.status for p in await positions(db)] == ["open"]
    await rig.stop()


async def test_crash_between_written_and_sent_never_duplicates(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    await rig.candle("100")
    ex = rig.engine.executor
    spec = OrderSpec(pair=PAIR, side=Side.BUY, qty=Decimal("1"), purpose=OrderPurpose.ENTRY, position_id=None)
    # written, then the process dies before sending
    _, row = await ex.prepare_entry(PositionRow(pair=PAIR, status="pending"), spec)
    # a second order whose submit reached the venue, but whose answer was lost
    _, lost = await ex.prepare_entry(PositionRow(pair=PAIR, status="pending"), spec)
    from exchanges.base import OrderRequest, OrderType

    await rig.paper.place_order(OrderRequest(lost.client_order_id, PAIR, Side.BUY, OrderType.MARKET, Decimal("1")))
    await rig.stop()

    restarted = Rig(db, clock=rig.clock)
    await restarted.start()  # recovery adopts the lost one; the venue has no price yet, so the other waits
    async with db.session() as s:
        assert [o.client_order_id for o in (await s.exec(select(PaperOrderRow))).all()] == [lost.client_order_id]
    await restarted.candle("100")  # the first price: the unsent order goes, with its original id
    again = Executor(db, restarted.paper, restarted.events, restarted.clock)
    # nothing is left to send a second time
    assert await again.resend_unsent(state=TradingStatus.RUNNING, priced=restarted.engine.md) == []
    assert await restarted.engine.executor.resend_unsent(state=TradingStatus.RUNNING,
                                                         priced=restarted.engine.md) == []
    async with db.session() as s:
        venue_orders = (await s.exec(select(PaperOrderRow))).all()
        ours = {o.client_order_id: o for o in (await s.exec(select(OrderRow))).all()}
    ids = [o.client_order_id for o in venue_orders]
    assert sorted(ids) == sorted([row.client_order_id, lost.client_order_id])
    assert ours[row.client_order_id].status in ("submitted", "filled")
    assert ours[lost.client_order_id].status in ("submitted", "filled")
    await restarted.stop()


async def test_kill_works_while_a_scan_is_blocked_and_survives_restart(db: Database) -> None:
    strategy = ScriptedStrategy({3: "buy"})
    rig = Rig(db, strategy)
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    assert [p.status for p in await positions(db)] == ["open"]
    strategy.gate.clear()
    strategy.entered.clear()
    busy = asyncio.create_task(rig.candle("101"))
    await asyncio.get_running_loop().run_in_executor(None, strategy.entered.wait, 5)
    assert not busy.done()  # the scan is stuck in the strategy
    t0 = time.monotonic()
    result = await rig.engine.submit(Kill(requested_by="console:local"))
    elapsed = time.monotonic() - t0
    assert result.ok, result
    assert elapsed < 4.0  # the scan stays blocked until the test releases it
    assert any("closed" in line for line in result.details)
    assert [p.status for p in await positions(db)] == ["closed"]
    strategy.gate.set()
    await busy
    assert "killed" in rig.kinds()
    await rig.stop()

    again = Rig(db, clock=rig.clock)
    await again.start()
    assert again.engine.state.state == "killed"
    refused = await again.engine.submit(Resume(requested_by="telegram:1"))
    assert not refused.ok and "/rearm" in refused.message
    assert (await again.engine.submit(Rearm(requested_by="telegram:9"))).ok
    assert again.engine.state.state == "paused"
    await again.stop()


async def test_kill_cancels_resting_orders_too(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    await rig.candle("100")
    from exchanges.base import OrderType

    await rig.engine.executor.place(OrderSpec(pair=PAIR, side=Side.BUY, qty=Decimal("1"), purpose=OrderPurpose.ENTRY,
                                              position_id=None, order_type=OrderType.LIMIT, limit_price=Decimal(50)))
    assert len(await rig.engine.executor.open_orders()) == 1
    result = await rig.engine.submit(Kill(requested_by="console:local"))
    assert result.ok
    assert any(line.startswith("cancelled") for line in result.details)
    assert await rig.engine.executor.open_orders() == []
    assert await rig.paper.open_orders() == []
    await rig.stop()


async def test_close_position_and_unknown_pair(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    bad = await rig.engine.submit(ClosePosition(requested_by="t", pair="DOGE/USD"))
    assert not bad.ok and "unknown pair" in bad.message
    ok = await rig.engine.submit(ClosePosition(requested_by="t", pair=PAIR))
    assert ok.ok and [c.pair for c in ok.closed] == [PAIR] and ok.closed[0].qty > 0 and not ok.pending
    none = await rig.engine.submit(ClosePosition(requested_by="t", pair=PAIR))
    assert not none.ok and "no open position" in none.message
    await rig.stop()


async def test_restart_reconciles_and_reports_differences(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    await rig.stop()
    await rig.paper.set_balance("BTC", Decimal(0))  # someone sold on the venue behind our back
    again = Rig(db, clock=rig.clock)
    await again.start()
    diffs = [e for e in again.drain() if e.kind == "reconcile_difference"]
    assert diffs and "BTC" in diffs[0].summary()
    (pos,) = await positions(db)
    assert pos.status == "open"  # a difference is reported, never silently "fixed"
    await again.stop()


async def test_restart_reports_a_shortfall_in_a_pair_no_longer_traded(db: Database) -> None:
    """The start-up check compares every open position (the scheduled reconciliation's rule), not only
    the pairs traded now: a position left in a pair taken out of ``trading.pairs`` is still ours."""
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    await rig.stop()
    await rig.paper.set_balance("BTC", Decimal(0))
    again = Rig(db, clock=rig.clock, pairs=("ETH/USD",))
    await again.start()
    diffs = [e for e in again.drain() if isinstance(e, ReconcileDifference)]
    assert [d.currency for d in diffs] == ["BTC"]
    await again.stop()


async def test_bad_candles_are_counted_not_fatal(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    await rig.candle("100")
    from exchanges.base import Candle
    from tests.core.engine_rig import T0

    await rig.engine.on_candle(Candle(PAIR, 3600, T0, Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1)))
    await rig.engine.on_candle(Candle(PAIR, 3600, T0.replace(hour=5), Decimal(-1), Decimal(1), Decimal(-1),
                                      Decimal(1), Decimal(1)))
    health = await rig.engine.health()
    assert health.counters["candle_rejected:duplicate candle"] == 1
    assert health.counters["candle_rejected:non-positive price"] == 1
    await rig.stop()


async def test_status_follows_every_order_and_position_change_at_once(db: Database) -> None:
    """/status reuses its database reads while nothing changes; each change must show immediately."""
    rig = Rig(db, ScriptedStrategy({2: "buy", 5: "sell"}))
    await rig.start()
    try:
        await rig.candle("100")
        first = await rig.engine.status()
        assert first.positions == () and first.open_orders == 0
        again = await rig.engine.status()
        assert (again.positions, again.open_orders, again.today_pnl) == (
            first.positions, first.open_orders, first.today_pnl)

        await rig.candle("100")  # the scripted buy fills at once
        st = await rig.engine.status()
        assert [p.pair for p in st.positions] == [PAIR] and st.open_orders == 0

        resting = await rig.engine.executor.place(OrderSpec(pair=PAIR, side=Side.BUY, qty=Decimal("0.1"),
                                                            purpose=OrderPurpose.ENTRY, position_id=None,
                                                            order_type=OrderType.LIMIT, limit_price=Decimal(50)))
        assert (await rig.engine.status()).open_orders == 1
        await rig.engine.executor.cancel_many([resting])
        assert (await rig.engine.status()).open_orders == 0

        await rig.candle("104")
        moved = await rig.engine.status()
        assert moved.positions[0].mark_price == Decimal(104)  # marks are live even when the rows are reused
        await rig.candle("104")
        await rig.candle("110")  # the scripted sell closes the position
        closed = await rig.engine.status()
        (pos,) = await positions(db)
        assert pos.status == "closed" and closed.positions == ()
        assert closed.today_pnl == pos.realized_pnl.quantize(Decimal("0.01"))
    finally:
        await rig.stop()


async def test_a_failed_engine_task_is_reported_and_health_says_so(db: Database) -> None:
    async def broken_feed() -> AsyncIterator[object]:
        for _ in ():  # an async generator that fails at its first step
            yield
        raise ConnectionResetError("feed socket closed")

    failures: list[BaseException] = []
    rig = Rig(db, feed=broken_feed(), on_failure=failures.append)
    await rig.start()
    await eventually(lambda: failures, what="the failure reported")
    assert isinstance(failures[0], ConnectionResetError) and rig.engine.failed is failures[0]
    assert [e.where for e in rig.drain() if isinstance(e, EngineError)] == ["engine:feed"]
    assert not (await rig.engine.health()).ok
    await rig.stop()
