"""Every entry, the strategy's and a /buy, goes through one guard (core/trading/entries.py): racing entries
never give two positions in a pair, more positions than ``risk.max_open_positions``, or more exposure than
``risk.max_total_exposure`` -- within one engine and across two processes.

The interleaving is forced: the /buy's checks wait (inside its read of the balances) until the strategy's
entry is in its write transaction, and that transaction is held before its commit (see
:class:`~tests.core.trading.test_one_sell_guard.Meeting`). The invariant is checked from the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from sqlmodel import col, select

from core.settings.config import load_settings
from core.trading.engine import Engine
from core.trading.entries import EntryGuard, NoEntry
from core.trading.executor import OrderSpec
from core.trading.intents import PlaceOrder
from core.trading.market_data import MarketData
from core.trading.risk import Portfolio, RiskManager, TradeStats
from core.trading.state import StateStore
from core.trading.values import OPEN_STATES, OrderPurpose, PositionStatus
from exchanges.base import Balance, Side
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from persistence.models import OrderRow, PositionRow
from tests.core.engine_rig import PAIR, Rig, ScriptedStrategy, _idle_feed
from tests.core.trading.test_one_sell_guard import Meeting, MeetingExecutor
from tests.core.waiting import eventually

BY = "telegram:2"
OTHER = "ETH/USD"
D = Decimal


class HeldPaper(PaperExchange):
    """The paper venue; ``on_balances`` (once) runs inside the next read of the balances."""

    on_balances: Callable[[], Awaitable[None]] | None = None

    async def balances(self) -> dict[str, Balance]:
        hook, self.on_balances = self.on_balances, None
        if hook is not None:
            await hook()
        return await super().balances()


class RaceRig(Rig):
    paper: HeldPaper

    def build(self) -> Engine:
        s = self.settings
        self.paper = HeldPaper(self.db, {p: MarketRules() for p in self.pairs}, starting_balances={"USD": D(10000)},
                               slippage_bps=D(0), impact_bps=D(0), clock=self.clock, timeframe_s=3600)
        self.executor = MeetingExecutor(self.db, self.paper, self.events, self.clock, backoff_s=0.01)
        self.executor.meeting, self.executor.breaches = Meeting(), []
        self.engine = Engine(db=self.db, exchange=self.paper, feed=_idle_feed(), market_data=MarketData(3600),
                             evaluate=self.strategy, risk=RiskManager(s.risk), executor=self.executor,
                             state=StateStore(self.db, "default"), clock=self.clock, events=self.events,
                             trading=s.trading, timezone="UTC", mode="paper",
                             market_hooks=(self.paper.on_market_event,))
        return self.engine


def _rig(db: Database, *, max_open: int = 60, max_total: str = "1") -> RaceRig:
    settings = load_settings(env={}, dotenv_path=None, overrides={
        "trading": {"pairs": [PAIR, OTHER]},
        "risk": {"max_open_positions": max_open, "max_total_exposure": max_total, "max_pair_exposure": "0.5",
                 "cooldown_after_loss_s": 0, "daily_loss_limit": "0.9", "max_drawdown": "0.9"}})
    return RaceRig(db, ScriptedStrategy({4: "buy"}), settings=settings, pairs=(PAIR, OTHER))


async def _breaches(db: Database, *, max_open: int, max_exposure: Decimal) -> list[str]:
    """Where open and pending positions break the risk rules: two in a pair, too many, too much exposure
    (every price in these tests is 100; a live entry counts for what it still has to buy)."""
    async with db.read() as s:
        held = (await s.exec(select(PositionRow).where(col(PositionRow.status).in_(
            (PositionStatus.PENDING, PositionStatus.OPEN))))).all()
        entries = (await s.exec(select(OrderRow).where(OrderRow.purpose == OrderPurpose.ENTRY,
                                                       col(OrderRow.status).in_(OPEN_STATES)))).all()
    out = []
    pairs = [p.pair for p in held]
    out += [f"{pair}: {pairs.count(pair)} positions" for pair in sorted(set(pairs)) if pairs.count(pair) > 1]
    if len(held) > max_open:
        out.append(f"{len(held)} positions open or pending, at most {max_open}")
    exposure = sum((p.qty * 100 for p in held), D(0)) + sum(((o.qty - o.filled_qty) * 100 for o in entries), D(0))
    if exposure > max_exposure:
        out.append(f"exposure {exposure}, at most {max_exposure}")
    return out


async def _race(rig: RaceRig, buy_pair: str, qty: str) -> str:
    """The strategy enters BTC/USD on the 4th candle while a /buy of ``buy_pair`` is being checked; the
    /buy's answer."""
    engine, strategy, meeting = rig.engine, rig.strategy, rig.executor.meeting
    for _ in range(3):
        await rig.candle("100")
        await rig.candle("100", pair=OTHER)
    strategy.gate.clear()
    strategy.entered.clear()
    candle = asyncio.create_task(rig.candle("100"), name="test:candle")
    assert await asyncio.to_thread(strategy.entered.wait, 10)  # the scan runs (held at its gate)

    async def strategy_writes() -> None:  # inside the /buy's checks: the strategy's entry goes first
        meeting.arm()
        strategy.gate.set()
        await eventually(lambda: meeting.arrived or candle.done(), timeout=5, what="the strategy's entry writing")

    rig.paper.on_balances = strategy_writes
    bought = await engine.submit(PlaceOrder(requested_by=BY, pair=buy_pair, side="buy", qty=D(qty)))
    await candle
    meeting.armed = False
    assert engine.counters["scans"] >= 1 and not candle.exception()
    return bought.message


async def test_a_buy_and_a_strategy_entry_in_one_pair_write_one_entry(db: Database) -> None:
    rig = _rig(db)
    await rig.start()
    message = await _race(rig, PAIR, "2")
    assert await _breaches(db, max_open=60, max_exposure=D(10000)) == [] and rig.executor.breaches == []
    async with db.read() as s:
        (pos,) = (await s.exec(select(PositionRow).where(PositionRow.status != PositionStatus.VOID))).all()
    assert pos.strategy == "scripted" and "one position per pair" in message, message  # the /buy was refused
    await rig.stop()


@pytest.mark.parametrize("limit", ["positions", "exposure"])
async def test_a_buy_and_a_strategy_entry_in_two_pairs_keep_the_portfolio_limits(db: Database, limit: str) -> None:
    # alone, each entry fits: the strategy's 10 BTC (1000 USD), the /buy's 10 ETH (1000 USD); together they do not
    max_open, max_total = (1, "1") if limit == "positions" else (60, "0.15")
    rig = _rig(db, max_open=max_open, max_total=max_total)
    await rig.start()
    message = await _race(rig, OTHER, "10")
    assert await _breaches(db, max_open=max_open, max_exposure=D(10000) * D(max_total)) == []
    assert "refused by the risk limits" in message, message
    async with db.read() as s:
        (pos,) = (await s.exec(select(PositionRow).where(PositionRow.status != PositionStatus.VOID))).all()
    assert (pos.pair, pos.strategy) == (PAIR, "scripted")
    await rig.stop()


async def test_two_processes_racing_to_enter_write_one_entry(db: Database) -> None:
    """Two engines overlapping during a leadership hand-over (the old leader's loop stalled past its step-down),
    each with its own connections, enter the same pair and another within ``max_open_positions`` 1: the
    database lets one entry through."""
    rig = _rig(db, max_open=1)
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
        await rig.candle("100", pair=OTHER)
    engine = rig.engine
    other_db = Database(db.url, schema=db.schema)
    await other_db.start()
    meeting = Meeting()
    guards = []
    for handle in (db, other_db):
        executor = MeetingExecutor(handle, rig.paper, rig.events, rig.clock)
        executor.meeting, executor.breaches = meeting, []
        guards.append(EntryGuard(executor=executor, books=engine.books, market_data=engine.md, states=engine.states))

    def judge(pair: str) -> Callable[[Portfolio], tuple[PositionRow, OrderSpec] | str]:
        def check(portfolio: Portfolio) -> tuple[PositionRow, OrderSpec] | str:
            decision = engine.risk.check_entry(pair=pair, price=D(100), suggested_stop=D(90),
                                               market=engine.markets[pair], portfolio=portfolio,
                                               stats=TradeStats(0, 0, D(0), D(0)), now=rig.clock.now())
            if not decision.approved:
                return decision.reason
            return (PositionRow(pair=pair, status=PositionStatus.PENDING, stop_price=decision.stop, strategy="race",
                                opened_at=rig.clock.now()),
                    OrderSpec(pair=pair, side=Side.BUY, qty=decision.qty, purpose=OrderPurpose.ENTRY, position_id=None))
        return check

    for here, there in ((PAIR, PAIR), (PAIR, OTHER)):
        meeting.arm()
        answers = await asyncio.gather(guards[0].write(here, judge(here)), guards[1].write(there, judge(there)))
        meeting.armed = False
        assert [isinstance(a, NoEntry) for a in answers].count(True) == 1, answers
        assert await _breaches(db, max_open=1, max_exposure=D(10000)) == []
        async with db.session() as s:  # void the entry for the next round
            for p in (await s.exec(select(PositionRow))).all():
                p.status = PositionStatus.VOID
                s.add(p)
            for o in (await s.exec(select(OrderRow))).all():
                o.status = "cancelled"
                s.add(o)
    await other_db.stop()
    await rig.stop()

