"""No entry, by hand or by the strategy, goes into a pair that is being removed (/pairs remove), including
one that races the removal: a position must never open in a pair the engine no longer watches."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlmodel import select

from core.trading.engine import Engine
from core.trading.entries import EntryGuard, Judge, NoEntry
from core.trading.executor import Executor
from core.trading.intents import IntentResult, PlaceOrder, RemovePair
from core.trading.market_data import MarketData
from core.trading.risk import RiskManager
from core.trading.state import StateStore
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from persistence.models import OrderRow, PositionRow
from tests.core.engine_rig import PAIR, Rig, ScriptedStrategy, _idle_feed

BY = "telegram:2"
OTHER = "ETH/USD"
D = Decimal


class HookedExecutor(Executor):
    """Runs ``before_entry`` (once) just before an entry is written, and ``after_entry`` (once) just after
    (through :class:`HookedGuard`, which writes every entry)."""

    before_entry: Callable[[], Awaitable[None]] | None = None
    after_entry: Callable[[], Awaitable[None]] | None = None


class HookedGuard(EntryGuard):
    def __init__(self, hooked: HookedExecutor, engine: Engine) -> None:
        super().__init__(executor=hooked, books=engine.books, market_data=engine.md, states=engine.states)
        self.hooked = hooked

    async def write(self, pair: str, judge: Judge, *, force: bool = False) -> tuple[PositionRow, OrderRow] | NoEntry:
        hook, self.hooked.before_entry = self.hooked.before_entry, None
        if hook is not None:
            await hook()
        written = await super().write(pair, judge, force=force)
        hook, self.hooked.after_entry = self.hooked.after_entry, None
        if hook is not None:
            await hook()
        return written


class HookedRig(Rig):
    def build(self) -> Engine:
        s = self.settings
        self.paper = PaperExchange(self.db, {p: MarketRules() for p in self.pairs}, starting_balances={"USD": D(10000)},
                                   slippage_bps=D(0), impact_bps=D(0), clock=self.clock, timeframe_s=3600)
        self.executor = HookedExecutor(self.db, self.paper, self.events, self.clock, backoff_s=0.01)
        self.engine = Engine(db=self.db, exchange=self.paper, feed=_idle_feed(), market_data=MarketData(3600),
                             evaluate=self.strategy, risk=RiskManager(s.risk), executor=self.executor,
                             state=StateStore(self.db, "default"), clock=self.clock, events=self.events,
                             trading=s.trading, timezone="UTC", mode="paper",
                             market_hooks=(self.paper.on_market_event,))
        self.engine.entries = self.engine.manual.entries = HookedGuard(self.executor, self.engine)
        return self.engine


async def _positions(db: Database) -> list[PositionRow]:
    async with db.read() as s:
        return list((await s.exec(select(PositionRow))).all())


async def _started(db: Database, strategy: ScriptedStrategy | None = None) -> HookedRig:
    rig = HookedRig(db, strategy, pairs=(PAIR, OTHER))
    await rig.start()
    for _ in range(3):
        await rig.candle("100")
        await rig.candle("100", pair=OTHER)
    return rig


async def test_a_buy_in_a_pair_being_removed_is_refused_with_a_clear_message(db: Database) -> None:
    rig = await _started(db)
    engine = rig.engine
    assert (await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=D(2)))).ok
    kept = await engine.submit(RemovePair(requested_by="telegram:1", pair=PAIR, then="keep"))
    assert kept.ok and PAIR in engine.pair_set.closing
    # the position is sold by hand; until the next market event drops the pair it is still "closing"
    assert (await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="sell", qty=D(2)))).ok
    assert await engine.exits.open_position(PAIR) is None and PAIR in engine.pairs
    for preview in (True, False):
        bought = await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=D(1), force=True,
                                                preview=preview))
        assert not bought.ok and "being removed" in bought.message and f"/pairs add {PAIR}" in bought.message
    assert [p.status for p in await _positions(db)] == ["closed"]
    await rig.stop()


async def test_a_buy_whose_pair_is_removed_while_it_is_written_is_not_sent(db: Database) -> None:
    rig = await _started(db)
    engine = rig.engine
    removed: list[IntentResult] = []

    async def remove() -> None:
        removed.append(await engine.submit(RemovePair(requested_by="telegram:1", pair=PAIR, then="close")))

    rig.executor.after_entry = remove
    bought = await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=D(2)))
    assert removed[0].ok
    assert not bought.ok and "being removed" in bought.message and "nothing was bought" in bought.message
    assert [p.status for p in await _positions(db)] == ["void"]
    await rig.stop()


async def test_a_removal_that_lands_before_a_buy_is_written_does_not_drop_the_pair_under_it(db: Database) -> None:
    rig = await _started(db)
    engine = rig.engine
    removed: list[IntentResult] = []

    async def remove() -> None:
        removed.append(await engine.submit(RemovePair(requested_by="telegram:1", pair=PAIR, then="close")))

    rig.executor.before_entry = remove
    bought = await engine.submit(PlaceOrder(requested_by=BY, pair=PAIR, side="buy", qty=D(2)))
    assert removed[0].ok and not bought.ok and "being removed" in bought.message
    # never a position in a pair the engine no longer watches
    watched = set(engine.pairs)
    assert [p for p in await _positions(db) if p.status in ("open", "pending") and p.pair not in watched] == []
    assert [p.status for p in await _positions(db)] == ["void"]
    await rig.stop()


async def test_a_strategy_entry_whose_pair_is_removed_during_the_scan_is_not_placed(db: Database) -> None:
    strategy = ScriptedStrategy({4: "buy"})
    rig = await _started(db, strategy)
    engine = rig.engine
    strategy.gate.clear()
    strategy.entered.clear()
    scan = asyncio.create_task(rig.candle("100"))  # the 4th candle: the strategy buys, once let through
    await asyncio.to_thread(strategy.entered.wait, 10)
    removed = await engine.submit(RemovePair(requested_by="telegram:1", pair=PAIR))
    assert removed.ok and PAIR not in engine.pairs
    strategy.gate.set()
    await scan
    assert await _positions(db) == []
    await rig.stop()
