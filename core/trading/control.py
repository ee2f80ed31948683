"""Applying intents: what a command asks the engine to do, one at a time.

Pause, resume and re-arm are transitions of :class:`~core.trading.state.TradingStates`; /close and
/closeall sell through :class:`~core.trading.exits.Exits`; a kill goes straight to the kill switch
(it never waits behind another intent).
"""

from __future__ import annotations

import asyncio

from core.trading import accounting
from core.trading.events import Rearmed
from core.trading.executor import Executor
from core.trading.exits import Exits
from core.trading.intents import (
    CancelOrders,
    CloseAll,
    ClosedPosition,
    ClosePosition,
    Intent,
    IntentResult,
    Kill,
    ListOrders,
    OpenItem,
    PauseEntries,
    PlaceOrder,
    Rearm,
    Resume,
)
from core.trading.kill import KillSwitch
from core.trading.manual import ManualOrders
from core.trading.queries import closed_position
from core.trading.state import KILLED, PAUSED, RUNNING, TradingStates
from core.trading.traded import TradedPairs
from core.trading.values import OrderPurpose, PositionStatus, market_rules
from persistence.db import Database
from persistence.models import PositionRow


class Control:
    def __init__(self, *, db: Database, states: TradingStates, kill_switch: KillSwitch, exits: Exits,
                 executor: Executor, pairs: TradedPairs, manual: ManualOrders | None = None) -> None:
        """``manual``: orders by hand (/buy, /sell, /orders, /cancel); without it they are refused."""
        self.db, self.states, self.kill_switch, self.exits, self.executor = db, states, kill_switch, exits, executor
        self.pairs = pairs
        self.manual = manual
        self._lock = asyncio.Lock()

    async def submit(self, intent: Intent) -> IntentResult:
        if isinstance(intent, Kill):
            return await self.kill_switch.kill(intent.requested_by, intent.reason)
        async with self._lock:
            return await self._apply(intent)

    async def _apply(self, intent: Intent) -> IntentResult:
        st = self.states.state
        by = intent.requested_by
        if isinstance(intent, PauseEntries):
            if st == KILLED:
                return IntentResult(False, "trading is killed; nothing to pause (an admin can /rearm)")
            if st == PAUSED:
                return IntentResult(True, f"already paused ({self.states.current.reason})")
            await self.states.change(PAUSED, intent.reason, by)
            return IntentResult(True, "entries paused; open positions are still managed (stops, exits)")
        if isinstance(intent, Resume):
            if st == KILLED:
                return IntentResult(False, "trading is killed; an admin must /rearm first")
            if st == RUNNING:
                return IntentResult(True, "already running")
            await self.states.change(RUNNING, "resumed", by)
            return IntentResult(True, "trading resumed")
        if isinstance(intent, Rearm):
            if st != KILLED:
                return IntentResult(False, f"trading is {st}, not killed; nothing to re-arm")
            await self.states.change(PAUSED, "re-armed after kill; /resume to trade", by, extra=(Rearmed(by=by),))
            return IntentResult(True, "re-armed: trading is paused; /resume starts entries")
        if isinstance(intent, (ClosePosition, CloseAll)) and st == KILLED:
            return IntentResult(False, "trading is killed: the kill closes every position itself "
                                       "(/kill again retries it)")
        if isinstance(intent, ClosePosition):
            if intent.pair not in self.pairs:
                traded = ", ".join(self.pairs.active)
                return IntentResult(False, f"unknown pair {intent.pair!r}; traded pairs: {traded}")
            pos = await self.exits.open_position(intent.pair)
            if pos is None or pos.status != PositionStatus.OPEN:
                return IntentResult(False, f"no open position in {intent.pair}")
            return await self._close([pos], by)
        if isinstance(intent, CloseAll):
            async with self.db.read() as s:
                positions = await accounting.open_positions(s)
            if not positions:
                return IntentResult(True, "no open positions")
            return await self._close(positions, by)
        if isinstance(intent, (PlaceOrder, CancelOrders, ListOrders)) and self.manual is not None:
            return await self.manual.apply(intent)
        return IntentResult(False, f"unsupported intent {type(intent).__name__}")

    async def _close(self, positions: list[PositionRow], by: str) -> IntentResult:
        await asyncio.gather(*(self.exits.exit_position(p, purpose=OrderPurpose.CLOSE, reason=f"closed by {by}", by=by)
                               for p in positions))
        await self.executor.poll_fills()
        closed: list[ClosedPosition] = []
        pending: list[OpenItem] = []
        async with self.db.read() as s:
            for p in positions:
                fresh = await s.get(PositionRow, p.id)
                if fresh is not None and fresh.status == PositionStatus.CLOSED:
                    closed.append(closed_position(fresh, self.executor.markets))
                else:
                    pending.append(OpenItem(pair=p.pair, qty=p.qty,
                                            qty_step=market_rules(self.executor.markets, p.pair)[0]))
        return IntentResult(True, f"closing {len(positions)} position(s)", closed=tuple(closed),
                            pending=tuple(pending))
