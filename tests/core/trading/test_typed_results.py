"""What the engine hands the chat: typed results for close and kill, closed trades only in /trades, and
the /status figures for the first line."""

from __future__ import annotations

from decimal import Decimal

from core.trading.events import Killed
from core.trading.intents import CloseAll, Kill
from persistence.db import Database
from tests.core.engine_rig import PAIR, Rig, ScriptedStrategy


async def test_close_and_kill_results_carry_values_not_text(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100", "104"]:
        await rig.candle(close)
    result = await rig.engine.submit(CloseAll(requested_by="telegram:1"))
    assert result.ok and not result.details and not result.pending
    (closed,) = result.closed
    assert closed.pair == PAIR and closed.qty > 0 and closed.exit_price == Decimal(104)
    assert closed.fees > 0 and closed.pnl == closed.qty * 104 - closed.qty * 100 - closed.fees
    assert closed.value == closed.qty * 104
    await rig.stop()


async def test_a_kill_reports_what_it_closed_as_values_and_nothing_open_plainly(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    result = await rig.engine.submit(Kill(requested_by="telegram:1", reason="test"))
    assert result.ok and [c.pair for c in result.closed] == [PAIR] and result.flat_s is not None
    (event,) = [e for e in rig.drain() if isinstance(e, Killed)]
    assert event.closed == result.closed and event.reason == "test"
    assert isinstance(event.to_dict()["closed"][0]["pnl"], Decimal)  # typed all the way to the outbox
    again = await rig.engine.submit(Kill(requested_by="telegram:1"))  # nothing open now
    assert again.ok and again.closed == () and again.cancelled == () and again.pending == ()
    summary = [e for e in rig.drain() if isinstance(e, Killed)][-1].summary()
    assert summary.endswith("nothing was open") and "after -" not in summary
    await rig.stop()


async def test_trades_are_closed_trades_only_and_status_has_its_first_line_figures(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy", 5: "sell", 6: "buy"}))
    await rig.start()
    for close in ["100", "100", "100", "104", "108", "110", "111"]:
        await rig.candle(close)
    trades = await rig.engine.trades(10)
    assert len(trades) == 1 and trades[0].closed_at is not None  # the position opened at bar 7 is not a trade yet
    assert trades[0].qty_step is not None and trades[0].price_tick is not None
    status = await rig.engine.status()
    (pos,) = status.positions
    assert status.unrealized == pos.unrealized_pnl and status.today_pnl_pct is not None
    day_start = status.equity - status.today_pnl
    assert status.today_pnl_pct == (status.today_pnl / day_start * 100).quantize(Decimal("0.01"))
    health = await rig.engine.health()
    assert health.instance_id == rig.engine.instance_id and health.uptime_s is not None
    await rig.stop()
