"""Restart after a crash: each test builds the state a crash leaves in the database, then starts a
new engine (on the real paper venue and the real database) on it.

The invariants: an order is sent only while its reason holds, a confirmed intent is completed (or
recorded as not executed) after a restart, a candle takes effect once, no position is left pending
without an order, and reconciliation looks only once the venue's fills are applied.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlmodel import col, select

from core.ops.leader import LeaderElector
from core.trading.executor import OrderSpec, PricedPairs
from core.trading.intents import PauseEntries
from core.trading.order_reasons import OrderVoided, judge
from core.trading.state import TradingStatus
from core.trading.values import OrderPurpose
from exchanges.base import OrderRequest, OrderType, Side
from persistence.db import Database
from persistence.models import ConfirmationRow, FillRow, OrderRow, PaperFillRow, PaperOrderRow, PositionRow
from tests.core.engine_rig import PAIR, T0, Rig, ScriptedStrategy, make_candle
from tests.core.waiting import eventually

D = Decimal
FAST = {"protection_interval_s": 0.02}  # the protection loop retries unsent orders every 10 passes


async def order(db: Database, client_order_id: str) -> OrderRow:
    async with db.read() as s:
        return (await s.exec(select(OrderRow).where(OrderRow.client_order_id == client_order_id))).one()


async def at_venue(db: Database) -> set[str]:
    async with db.read() as s:
        return set((await s.exec(select(PaperOrderRow.client_order_id))).all())


async def positions(db: Database) -> list[PositionRow]:
    async with db.read() as s:
        return list((await s.exec(select(PositionRow).order_by(col(PositionRow.id)))).all())


async def settled(db: Database, client_order_id: str) -> bool:
    return (await order(db, client_order_id)).status != "new"


def exit_spec(pos: PositionRow, purpose: str = "exit", *, reason: str = "", requested_by: str = "engine",
              order_type: OrderType = OrderType.MARKET, limit_price: Decimal | None = None) -> OrderSpec:
    return OrderSpec(pair=pos.pair, side=Side.SELL, qty=pos.qty, purpose=OrderPurpose(purpose), position_id=pos.id,
                     reason=reason, requested_by=requested_by, order_type=order_type, limit_price=limit_price)


async def open_position(rig: Rig) -> PositionRow:
    for close in ["100", "100", "100"]:  # the scripted strategy buys on the third bar
        await rig.candle(close)
    (pos,) = [p for p in await positions(rig.db) if p.status == "open"]
    return pos


# -- orders know why they exist ------------------------------------------------------------


def test_an_unsent_order_is_judged_by_its_reason() -> None:
    now = T0
    pos = PositionRow(id=1, pair=PAIR, status="open", qty=D(2))

    def row(purpose: str, side: str = "sell", qty: str = "2", cid: str = "a", age_s: float = 0) -> OrderRow:
        return OrderRow(client_order_id=cid, venue="paper", pair=PAIR, side=side, order_type="market", qty=D(qty),
                        status="new", purpose=purpose, position_id=1, created_at=now - timedelta(seconds=age_s))

    def verdict(order: OrderRow, position: PositionRow | None, state: str = "running",
                closing: dict[int, tuple[str, str]] | None = None) -> tuple[bool, str]:
        v = judge(order, position, state=TradingStatus(state), closing=closing or {}, now=now)
        return v.send, v.why

    pending = PositionRow(id=1, pair=PAIR, status="pending")
    assert verdict(row("entry", "buy"), pending) == (True, "")
    assert verdict(row("entry", "buy"), pending, "paused") == (False, "trading is paused: no new entries")
    assert verdict(row("entry", "buy"), pending, "killed")[0] is False
    assert verdict(row("entry", "buy", age_s=61), pending)[1].startswith("not sent within 60s")
    assert verdict(row("entry", "buy"), None) == (False, "it belongs to no position")
    assert verdict(row("stop"), pos) == (True, "")
    assert verdict(row("stop"), pos, "paused") == (True, "")  # exits are managed while paused
    closed = PositionRow(id=1, pair=PAIR, status="closed", qty=D(0))
    assert verdict(row("exit"), closed) == (False, "position #1 is closed")
    assert verdict(row("close"), pos, "killed") == (False, "trading is killed: the kill flattens with its own orders")
    assert verdict(row("exit"), pos, closing={1: ("b", "stop")}) == (
        False, "position #1 is already being closed by b (stop)")
    assert verdict(row("exit", qty="3"), pos) == (False, "position #1 holds only 2, the order sells 3")
    assert verdict(row("kill"), pos, "killed", closing={1: ("b", "stop")}) == (True, "")  # the kill cancels the stop
    assert verdict(row("kill"), pos, "killed", closing={1: ("b", "kill")})[0] is False
    assert verdict(row("kill"), pos, "paused") == (False, "trading is paused, no longer killed")


async def test_an_unsent_exit_for_a_closed_position_is_voided_not_sold_from_the_next_one(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy", 6: "buy"}), trading=FAST)
    await rig.start()
    first = await open_position(rig)
    await rig.candle("95", low="89")  # the stop (90) closes it
    await rig.candle("100")
    await rig.candle("100")  # bar 6: the next position
    closed, current = await positions(db)
    assert closed.status == "closed" and current.status == "open"
    await rig.stop()
    # the crash left a strategy exit for the first position written but never sent
    (stale,) = await rig.engine.executor.prepare([exit_spec(first, reason="scripted sell")])

    again = Rig(db, clock=rig.clock, trading=FAST)
    await again.start()
    again.bars = {PAIR: 6}
    await again.candle("100")  # the first price after the restart
    await eventually(lambda: settled(db, stale.client_order_id), what="the stale exit handled")
    row = await order(db, stale.client_order_id)
    assert row.status == "cancelled" and row.last_error == "voided: position #1 is closed"
    assert stale.client_order_id not in await at_venue(db)  # never sent: the coins of #2 stay
    assert [(p.status, p.qty) for p in await positions(db)] == [("closed", D(0)), ("open", current.qty)]
    voided = [e for e in again.drain() if isinstance(e, OrderVoided)]
    assert len(voided) == 1 and "position #1 is closed" in voided[0].summary()
    assert voided[0].qty == stale.qty and isinstance(voided[0].qty, Decimal)  # a number, formatted by the alert
    await eventually(again.engine.recovery.done.is_set)
    assert any("voided, never sent: position #1 is closed" in line for line in again.engine.recovery.notes)
    assert "recovery" in again.kinds()
    await again.stop()


async def test_killed_state_voids_an_unsent_exit_and_the_kill_flattens(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}), trading=FAST)
    await rig.start()
    pos = await open_position(rig)
    await rig.stop()
    (close,) = await rig.engine.executor.prepare([exit_spec(pos, "close", requested_by="telegram:1")])
    # ... and then a kill persisted its state, and the process died before flattening
    await rig.engine.state_store.save("killed", "kill from chat", "telegram:9", datetime.now(UTC))

    again = Rig(db, clock=rig.clock, trading=FAST)
    await again.start()
    assert again.engine.state.state == "killed"
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(again.engine.recovery.done.is_set, what="recovery finished")
    (after,) = await positions(db)
    assert after.status == "closed"
    assert (await order(db, close.client_order_id)).status == "cancelled"
    assert close.client_order_id not in await at_venue(db)
    async with db.read() as s:
        sold = (await s.exec(select(OrderRow).where(OrderRow.position_id == pos.id, OrderRow.side == "sell",
                                                    OrderRow.status == "filled"))).all()
    assert [o.purpose for o in sold] == ["kill"]
    assert again.engine.state.state == "killed" and "killed" in again.kinds()
    await again.stop()


async def test_an_unsent_entry_is_voided_while_paused(db: Database) -> None:
    rig = Rig(db, trading=FAST)
    await rig.start()
    await rig.candle("100")
    assert (await rig.engine.submit(PauseEntries(requested_by="telegram:1"))).ok
    await rig.stop()
    async with db.session() as s:  # an entry written, the crash came before it was sent
        pending = PositionRow(pair=PAIR, status="pending")
        s.add(pending)
        await s.flush()
        pos_id = pending.id
    (entry,) = await rig.engine.executor.prepare([OrderSpec(pair=PAIR, side=Side.BUY, qty=D(1),
                                                            purpose=OrderPurpose.ENTRY, position_id=pos_id)])

    again = Rig(db, clock=rig.clock, trading=FAST)
    await again.start()
    again.bars = {PAIR: 1}
    await again.candle("100")
    await eventually(lambda: settled(db, entry.client_order_id), what="the unsent entry handled")
    assert (await order(db, entry.client_order_id)).last_error == "voided: trading is paused: no new entries"
    assert entry.client_order_id not in await at_venue(db)
    assert [p.status for p in await positions(db)] == ["void"]
    await again.stop()


async def test_an_unsent_exit_is_voided_while_another_order_closes_the_position(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}), trading=FAST)
    await rig.start()
    pos = await open_position(rig)
    resting = await rig.engine.executor.place(exit_spec(pos, "take_profit", order_type=OrderType.LIMIT,
                                                        limit_price=D(150)))
    assert resting.status == "submitted"
    await rig.stop()
    (second,) = await rig.engine.executor.prepare([exit_spec(pos, "exit")])

    again = Rig(db, clock=rig.clock, trading=FAST)
    await again.start()
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(lambda: settled(db, second.client_order_id), what="the second exit handled")
    row = await order(db, second.client_order_id)
    assert (row.status, row.last_error) == (
        "cancelled", f"voided: position #{pos.id} is already being closed by {resting.client_order_id} (take_profit)")
    assert (await order(db, resting.client_order_id)).status == "submitted"
    await again.stop()


async def test_an_unsent_stop_for_an_open_position_goes_once_with_the_first_price(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}), trading=FAST)
    await rig.start()
    pos = await open_position(rig)
    await rig.stop()
    (stop,) = await rig.engine.executor.prepare([exit_spec(pos, "stop")])

    again = Rig(db, clock=rig.clock, trading=FAST)
    await again.start()
    assert (await order(db, stop.client_order_id)).status == "new"  # no price yet: it waits
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(again.engine.recovery.done.is_set)
    assert (await order(db, stop.client_order_id)).status == "filled"
    (after,) = await positions(db)
    assert after.status == "closed" and after.exit_reason == "stop"
    async with db.read() as s:
        sent = select(PaperOrderRow).where(PaperOrderRow.client_order_id == stop.client_order_id)
        assert len((await s.exec(sent)).all()) == 1
    assert any("sent with its original id" in line for line in again.engine.recovery.notes)
    await again.stop()


async def test_an_unsent_order_waits_until_its_own_pair_counts_as_priced(db: Database) -> None:
    """What recovery asks for while no pair has a price (none counts), when one pair's first price comes
    (only that one) and what the protection loop asks (the market data)."""
    rig = Rig(db, ScriptedStrategy({3: "buy"}), trading={"protection_interval_s": 60})  # no retry of its own
    await rig.start()
    pos = await open_position(rig)
    (stop,) = await rig.engine.executor.prepare([exit_spec(pos, "stop")])
    ex, ids = rig.engine.executor, {stop.client_order_id}
    assert await ex.resend_unsent(state=TradingStatus.RUNNING, priced=PricedPairs(), only=ids) == []
    assert await ex.resend_unsent(state=TradingStatus.RUNNING, priced=PricedPairs(frozenset({"ETH/USD"})),
                                  only=ids) == []
    assert (await order(db, stop.client_order_id)).status == "new"  # waiting, neither sent nor voided
    assert stop.client_order_id not in await at_venue(db)
    assert rig.engine.md.priced(PAIR)
    (line,) = await ex.resend_unsent(state=TradingStatus.RUNNING, priced=rig.engine.md, only=ids)
    assert "sent with its original id" in line, line
    assert stop.client_order_id in await at_venue(db) and await settled(db, stop.client_order_id)
    await rig.stop()


# -- recovery is the engine's, not the election's ---------------------------------------------


async def test_recovery_does_not_hold_up_the_leaders_lease(db: Database) -> None:
    """Unsent orders, a venue 250 ms away with no price yet: the leader's term starts the engine,
    recovery runs in the engine's own task and waits for the first price; the lease is renewed
    all along (one term, one epoch)."""
    pairs = ("BTC/USD", "ETH/USD", "SOL/USD")
    rig = Rig(db, ScriptedStrategy({3: "buy"}), pairs=pairs, trading=FAST)
    await rig.start()
    for _ in range(3):
        for pair in pairs:
            await rig.candle("100", pair=pair)
    opened = [p for p in await positions(db) if p.status == "open"]
    assert len(opened) == 3
    await rig.stop()
    stops = await rig.engine.executor.prepare([exit_spec(p, "stop") for p in opened])

    again = Rig(db, clock=rig.clock, pairs=pairs, trading=FAST, latency_ms=250)
    started_in: list[float] = []

    async def elected(epoch: int) -> None:
        t0 = time.perf_counter()
        engine = again.build()
        await again.paper.start()
        await engine.start()
        started_in.append(time.perf_counter() - t0)

    async def lost() -> None:
        await again.stop()

    elector = LeaderElector(db, group="default", instance_id="me", ttl_s=1.5, renew_s=0.1, step_down_s=1.0,
                            follower_poll_s=0.05, on_elected=elected, on_lost=lost)
    await elector.start()
    try:
        first = elector.epoch
        assert first is not None and started_in and started_in[0] < 1.0, started_in
        await eventually(again.engine.recovery.prepared.is_set, what="recovery prepared")
        assert {s.client_order_id for s in stops}.isdisjoint(await at_venue(db))  # no price yet: nothing sent
        for pair in pairs:
            await again.candle("100", pair=pair)
        await eventually(again.engine.recovery.done.is_set, what="recovery finished")
        assert [p.status for p in await positions(db)] == ["closed"] * 3
        assert (elector.epoch, elector.transitions) == (first, 1)
        assert await elector.lease.holds("me", first)
    finally:
        await elector.stop()


# -- exactly once per candle -------------------------------------------------------------------


async def test_a_candle_processed_again_after_a_crash_fills_nothing_twice(db: Database) -> None:
    """An entry larger than a candle's volume cap fills a part per candle. The process dies after
    the venue stored candle 5's fills but before the engine stored its cursor; the restarted feed
    hands candle 5 in again."""
    rig = Rig(db, ScriptedStrategy({3: "buy"}), volume_share="0.1")
    await rig.start()
    for close in ["100", "100", "100", "100"]:
        await rig.candle(close, volume="10")  # 1 BTC of liquidity per candle
    (pos,) = await positions(db)
    (entry,) = await rig.engine.executor.open_orders()
    assert entry.qty > 3 and pos.qty == 2  # one at once on bar 3, one on bar 4
    fifth = make_candle(4, "100", volume="10")
    rig.clock.advance_to(fifth.ts + timedelta(hours=1))
    await rig.paper.on_candle(fifth)  # the venue matched and stored it ... and the process died
    await rig.stop()

    again = Rig(db, clock=rig.clock, volume_share="0.1")
    await again.start()
    again.bars = {PAIR: 4}
    await again.candle("100", volume="10")  # candle 5, handed in again
    async with db.read() as s:
        venue_fills = (await s.exec(select(PaperFillRow).where(
            PaperFillRow.client_order_id == entry.client_order_id))).all()
        ours = (await s.exec(select(FillRow).where(FillRow.client_order_id == entry.client_order_id))).all()
    assert [f.qty for f in venue_fills] == [D(1), D(1), D(1)]  # bar 3, bar 4, bar 5: never twice on bar 5
    assert len(ours) == 3
    (pos,) = await positions(db)
    assert pos.qty == 3
    await again.candle("100", volume="10")  # candle 6 fills its own share
    assert (await positions(db))[0].qty == 4
    await again.stop()


# -- no orphans ---------------------------------------------------------------------------------


async def test_a_pending_position_without_an_order_is_voided_and_entries_go_on(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    await rig.candle("100")
    await rig.stop()
    async with db.session() as s:  # the position was committed, the process died before its order
        s.add(PositionRow(pair=PAIR, status="pending"))

    again = Rig(db, ScriptedStrategy({3: "buy"}), clock=rig.clock)
    await again.start()
    again.bars = {PAIR: 1}
    for close in ["100", "100", "100"]:
        await again.candle(close)
    assert [p.status for p in await positions(db)] == ["void", "open"]
    await again.stop()


# -- reconciliation after fills ------------------------------------------------------------------


async def test_restart_applies_fills_before_it_reconciles(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    pos = await open_position(rig)
    await rig.stop()
    (exit_row,) = await rig.engine.executor.prepare([exit_spec(pos)])
    # the venue filled the exit; the process died before the fill was applied
    await rig.paper.place_order(OrderRequest(exit_row.client_order_id, PAIR, Side.SELL, OrderType.MARKET, pos.qty))

    again = Rig(db, clock=rig.clock)
    await again.start()
    assert "reconcile_difference" not in again.kinds()
    (after,) = await positions(db)
    assert after.status == "closed"
    assert (await order(db, exit_row.client_order_id)).status == "filled"
    await again.stop()


# -- confirmed intents a crash interrupted --------------------------------------------------------


async def confirmed(db: Database, command: str, *tokens: str, ago_s: float = 1.0) -> str:
    nonce = secrets.token_hex(8)
    at = datetime.now(UTC) - timedelta(seconds=ago_s)
    async with db.session() as s:
        s.add(ConfirmationRow(nonce=nonce, platform="telegram", user_id="9", chat_id="9", command=command,
                              args=json.dumps(list(tokens)), created_at=at, expires_at=at + timedelta(minutes=2),
                              used_at=at, outcome="confirmed"))
    return nonce


async def confirmation(db: Database, nonce: str) -> ConfirmationRow:
    async with db.read() as s:
        row = await s.get(ConfirmationRow, nonce)
    assert row is not None
    return row


async def test_a_confirmed_kill_interrupted_by_a_crash_ends_killed_and_flat(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    await open_position(rig)
    await rig.stop()
    nonce = await confirmed(db, "kill", "runaway", "losses")  # pressed; the process died 10 ms later

    again = Rig(db, ScriptedStrategy({1: "buy", 2: "buy", 3: "buy"}), clock=rig.clock)
    await again.start()
    assert again.engine.state.state == "killed"  # before the feed runs, before anything is sent
    stored = await again.engine.state_store.load()
    assert (stored.state, stored.changed_by) == ("killed", "telegram:9") and "runaway losses" in stored.reason
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(again.engine.recovery.done.is_set, what="recovery finished")
    assert [p.status for p in await positions(db)] == ["closed"]  # flattened, and nothing new opened
    row = await confirmation(db, nonce)
    assert row.executed_at is not None and row.result.startswith("completed after restart: killed")
    kinds = again.kinds()
    assert "killed" in kinds and "interrupted_command" in kinds
    await again.stop()


async def test_confirmed_closes_are_completed_only_while_fresh(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    await open_position(rig)
    await rig.stop()
    stale = await confirmed(db, "closeall", ago_s=600)
    fresh = await confirmed(db, "close", "btc-usd", ago_s=5)

    again = Rig(db, clock=rig.clock)
    await again.start()
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(again.engine.recovery.done.is_set, what="recovery finished")
    (pos,) = await positions(db)
    assert pos.status == "closed" and pos.exit_reason == "close"
    old, new = await confirmation(db, stale), await confirmation(db, fresh)
    assert old.executed_at is not None and old.result.startswith("NOT executed: confirmed 6")
    assert new.executed_at is not None and new.result.startswith("completed: closing 1 position")
    interrupted = [e for e in again.drain() if e.kind == "interrupted_command"]
    assert [e.command for e in interrupted] == ["closeall", "close"]  # type: ignore[attr-defined]
    await again.stop()


async def test_a_kill_whose_record_was_lost_after_a_rearm_is_not_repeated(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    await rig.stop()
    handled = await confirmed(db, "kill", ago_s=30)  # ran; only the "executed" mark was lost
    await rig.engine.state_store.save("paused", "re-armed after kill; /resume to trade", "telegram:9",
                                      datetime.now(UTC) - timedelta(seconds=10))
    again = Rig(db, clock=rig.clock)
    await again.start()
    assert again.engine.state.state == "paused"
    assert (await confirmation(db, handled)).result == (
        "already handled: trading was set paused by telegram:9 afterwards")
    await again.stop()

    lost = await confirmed(db, "kill", ago_s=30)  # never ran; a breaker paused entries afterwards
    await rig.engine.state_store.save("paused", "daily loss limit", "risk", datetime.now(UTC) - timedelta(seconds=10))
    third = Rig(db, clock=rig.clock)
    await third.start()
    assert third.engine.state.state == "killed"
    await eventually(third.engine.recovery.done.is_set)
    assert (await confirmation(db, lost)).result.startswith("completed after restart: killed")
    await third.stop()


async def test_a_candle_retried_after_its_commit_answer_was_lost_is_marked_once(db: Database) -> None:
    """The database went away while answering the commit of a candle's equity mark (the commit had
    gone through); the feed retries the candle in hand. It must not leave a second snapshot."""
    from persistence.models import EquitySnapshot

    rig = Rig(db)
    await rig.start()
    await rig.candle("100")
    await rig.candle("101")
    second = make_candle(1, "101")
    rig.engine._in_hand = (PAIR, second.ts)  # what a failed attempt at this candle leaves behind
    await rig.engine.on_candle(second)
    async with db.read() as s:
        snapshots = (await s.exec(select(EquitySnapshot))).all()
    assert len(snapshots) == 2
    assert rig.engine.counters["candle_marks_repeated"] == 1
    await rig.stop()


async def test_a_confirmed_cancel_interrupted_by_a_crash_is_completed_after_the_restart(db: Database) -> None:
    from core.trading.intents import PlaceOrder

    rig = Rig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    rested = await rig.engine.submit(PlaceOrder(requested_by="telegram:9", pair=PAIR, side="buy", qty=D(1),
                                                limit_price=D(95)))
    assert rested.ok and rested.orders[0].status == "submitted"  # resting at the venue, below the market
    resting = rested.orders[0].client_order_id
    await rig.stop()
    nonce = await confirmed(db, "cancel", "all")  # pressed; the process died before the venue heard of it

    again = Rig(db, clock=rig.clock)
    await again.start()
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(again.engine.recovery.done.is_set, what="recovery finished")
    assert (await order(db, resting)).status == "cancelled"
    row = await confirmation(db, nonce)
    assert row.executed_at is not None and row.result.startswith("completed: cancelled 1 order")
    assert [e.command for e in again.drain() if e.kind == "interrupted_command"] == ["cancel"]  # type: ignore[attr-defined]
    await again.stop()


async def test_a_confirmed_buy_interrupted_by_a_crash_is_recorded_and_never_run_again(db: Database) -> None:
    rig = Rig(db)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
    await rig.stop()
    buy = await confirmed(db, "buy", "BTC/USD", "0.5")  # pressed; the process died before an order row
    sell = await confirmed(db, "sell", "BTC/USD", "0.2", ago_s=30)
    async with db.read() as s:
        orders_before = len((await s.exec(select(OrderRow))).all())

    again = Rig(db, clock=rig.clock)
    await again.start()
    again.bars = {PAIR: 3}
    await again.candle("100")
    await eventually(again.engine.recovery.done.is_set, what="recovery finished")
    for nonce in (buy, sell):
        row = await confirmation(db, nonce)
        assert row.executed_at is not None and row.result.startswith("not run again after the restart"), row.result
    async with db.read() as s:
        assert len((await s.exec(select(OrderRow))).all()) == orders_before  # nothing placed for them
    interrupted = [e for e in again.drain() if e.kind == "interrupted_command"]
    assert sorted(e.command for e in interrupted) == ["buy", "sell"]  # type: ignore[attr-defined]
    await again.stop()
