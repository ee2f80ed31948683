"""The one guard every entry goes through before it is written: the strategy's and a /buy.

Invariant: open and pending positions (an entry being placed is a pending position from the moment its
row is written) never exceed the risk limits a non-forced entry is checked against -- at most one per
pair, at most ``risk.max_open_positions`` in all, and the exposure (open positions at the latest price
plus what live entry orders still have to buy) within the per-pair and total limits.

The checks and the write are one transaction that first takes a lock every entry of the deployment group
takes: on PostgreSQL a transaction-scoped advisory lock named after the group and the schema
(``pg_advisory_xact_lock``: unlike a lock of the ``trading_state`` row it needs no row, and writing one for
a group that never stored its state would change what recovery reads); on SQLite the database's write lock
from ``BEGIN IMMEDIATE``. Two entries that race -- a /buy and the strategy on one loop, or two processes
during a leadership hand-over, which the lease only bounds in time -- therefore take turns, and the second
is judged against a portfolio read from the database that includes the first. The group's stored state is
read under the same lock: a kill (or, for all but a forced /buy, a pause) stored by the other process wins.

The limits themselves are judged by the caller (:mod:`core.trading.risk` for the strategy, the manual
checks for /buy, which ``force`` may override); this module only supplies the locked portfolio and refuses
a second position in a pair, which nothing overrides. Not done: cash is the venue's figure read before the
lock (the venue refuses an order it cannot pay for), and equity too (an unsent entry does not change it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading import accounting
from core.trading.books import Books
from core.trading.executor import Executor, OrderSpec, new_client_order_id
from core.trading.market_data import MarketData
from core.trading.risk import Portfolio
from core.trading.state import KILLED, RUNNING, TradingStates
from core.trading.values import OPEN_STATES, OrderPurpose, PositionStatus
from exchanges.base import OrderStatus
from persistence.models import OrderRow, PositionRow, TradingStateRow

ZERO = Decimal(0)
# A pending entry whose price is unknown still marks its pair as held (the risk check tests "> 0").
HELD = Decimal("0.00000001")
# the reads of every entry, built once
_STORED_STATE = (select(TradingStateRow).where(TradingStateRow.group_name == bindparam("group"))
                 .execution_options(populate_existing=True))
_HELD_POSITIONS = (select(PositionRow).where(col(PositionRow.status).in_((PositionStatus.PENDING, PositionStatus.OPEN)))
                   .execution_options(populate_existing=True))
_OPEN_ENTRIES = select(OrderRow).where(OrderRow.purpose == OrderPurpose.ENTRY, col(OrderRow.status).in_(OPEN_STATES))

# Judges an entry against the locked portfolio: the position and order to write, or why not.
Judge = Callable[[Portfolio], "tuple[PositionRow, OrderSpec] | str"]


@dataclass(frozen=True, slots=True)
class NoEntry:
    """Why nothing was written."""

    why: str


class EntryGuard:
    """Writes entries under the group's entry lock (see the module docstring)."""

    def __init__(self, *, executor: Executor, books: Books, market_data: MarketData, states: TradingStates) -> None:
        self.executor, self.books, self.md, self.states = executor, books, market_data, states

    async def write(self, pair: str, judge: Judge, *, force: bool = False) -> tuple[PositionRow, OrderRow] | NoEntry:
        """Check and write a ``pending`` position and its entry order (status ``new``; nothing is sent).
        ``force`` (an admin's /buy) may enter while the stored state is paused, never killed."""
        balances = await self.books.venue.balances()
        equity = await self.books.equity(balances)
        cash = balances[self.books.trading.quote].available if self.books.trading.quote in balances else ZERO
        now = self.executor.clock.now()
        async with self.executor.writing() as s:
            stored = await self._lock(s)
            if stored == KILLED or (stored != RUNNING and not force):
                return NoEntry(f"trading is {stored}")
            portfolio, held = await self._portfolio(s, equity, cash)
            if pair in held:
                return NoEntry(f"{pair} already has a position or an entry being placed; one position per pair")
            verdict = judge(portfolio)
            if isinstance(verdict, str):
                return NoEntry(verdict)
            position, spec = verdict
            s.add(position)
            await s.flush()
            row = OrderRow(client_order_id=new_client_order_id(), venue=self.executor.venue.name, pair=spec.pair,
                           side=spec.side.value, order_type=spec.order_type.value, qty=spec.qty,
                           limit_price=spec.limit_price, status=OrderStatus.NEW, purpose=spec.purpose,
                           position_id=position.id, reason=spec.reason[:500], requested_by=spec.requested_by[:200],
                           created_at=now, updated_at=now)
            s.add(row)
            await s.flush()
        return position, row

    async def _lock(self, s: AsyncSession) -> str:
        """Take the entry lock; the state stored for the group (``running`` when none was ever stored)."""
        group = self.states.store.group
        if not self.executor.db.is_sqlite:  # on SQLite, BEGIN IMMEDIATE already holds the write lock
            conn = await s.connection()
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key || current_schema()))"),
                               {"key": f"tradectl:entries:{group}:"})
        row = (await s.exec(_STORED_STATE, params={"group": group})).first()
        return row.state if row is not None else RUNNING

    async def _portfolio(self, s: AsyncSession, equity: Decimal, cash: Decimal) -> tuple[Portfolio, set[str]]:
        positions = (await s.exec(_HELD_POSITIONS)).all()
        entries = (await s.exec(_OPEN_ENTRIES)).all()
        exposure: dict[str, Decimal] = {}
        for p in positions:
            price = self.md.price(p.pair) or (accounting.entry_price(p) if p.qty > 0 else None) or ZERO
            exposure[p.pair] = exposure.get(p.pair, ZERO) + p.qty * price
        for o in entries:
            price = o.limit_price or self.md.price(o.pair) or ZERO
            exposure[o.pair] = exposure.get(o.pair, ZERO) + max(o.qty - o.filled_qty, ZERO) * price
        for p in positions:
            exposure[p.pair] = max(exposure.get(p.pair, ZERO), HELD)
        return (Portfolio(equity=equity, cash_available=cash, exposure_by_pair=exposure,
                          open_positions=len(positions)), {p.pair for p in positions})

