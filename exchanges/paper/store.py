"""Persistence of the paper venue in the ``paper_balances``, ``paper_orders`` and ``paper_fills`` tables.

Every change the venue makes (an order placed, filled or cancelled, balances moved) is written in
one transaction, so a new :class:`~exchanges.paper.PaperExchange` on the same database continues
with the same balances, open orders and fills. Rows are keyed by venue name, so several paper
venues can share a database -- except that ``paper_orders.client_order_id`` is unique across all
of them, as client order ids are meant to be.

:class:`MemoryPaperStore` keeps the same state in memory, for a venue whose life is one process
(a backtest): nothing survives the process, and nothing needs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import col, select

from exchanges.base import Fill, OrderStatus, OrderType, Side
from exchanges.paper.model import ZERO, BalanceState, PaperOrder
from persistence.db import Database
from persistence.models import PaperBalanceRow, PaperFillRow, PaperOrderRow, RuntimeValue
from persistence.upsert import insert_ignore, table_of, upsert_rows

OPEN_STATUSES = (OrderStatus.SUBMITTED.value, OrderStatus.PARTIALLY_FILLED.value)
ORDER_COLUMNS = tuple(c.name for c in table_of(PaperOrderRow).columns)  # _to_values gives every one


class PaperStorage(Protocol):
    """Where a :class:`~exchanges.paper.PaperExchange` keeps its balances, orders, fills and candle cursors."""

    async def load(self, seed: Mapping[str, Decimal]) -> tuple[dict[str, BalanceState], list[PaperOrder]]: ...
    async def cursors(self) -> dict[str, tuple[datetime, Decimal]]: ...
    async def order_ids(self) -> set[str]: ...
    async def get_order(self, client_order_id: str) -> PaperOrder | None: ...
    async def save(self, orders: Iterable[PaperOrder], fills: Iterable[Fill], balances: Mapping[str, BalanceState],
                   cursors: Mapping[str, tuple[datetime, Decimal]] | None = None) -> None: ...
    async def fills_after(self, seq: int, limit: int) -> list[tuple[int, Fill]]: ...


class MemoryPaperStore:
    """:class:`PaperStorage` in this process's memory: the state a database store would hold, kept as
    copies (the venue goes on changing its own objects), with fills numbered from 1 as ``paper_fills.seq``
    numbers them."""

    def __init__(self) -> None:
        self._balances: dict[str, BalanceState] | None = None
        self._orders: dict[str, PaperOrder] = {}
        self._fills: list[Fill] = []
        self._cursors: dict[str, tuple[datetime, Decimal]] = {}

    async def load(self, seed: Mapping[str, Decimal]) -> tuple[dict[str, BalanceState], list[PaperOrder]]:
        if self._balances is None:
            self._balances = {c: BalanceState(Decimal(v), ZERO) for c, v in seed.items()}
        balances = {c: replace(b) for c, b in self._balances.items()}
        orders = [replace(o) for o in self._orders.values() if o.status.value in OPEN_STATUSES]
        orders.sort(key=lambda o: (o.created_at, o.venue_order_id))
        return balances, orders

    async def cursors(self) -> dict[str, tuple[datetime, Decimal]]:
        return dict(self._cursors)

    async def order_ids(self) -> set[str]:
        return set(self._orders)

    async def get_order(self, client_order_id: str) -> PaperOrder | None:
        order = self._orders.get(client_order_id)
        return replace(order) if order is not None else None

    async def save(self, orders: Iterable[PaperOrder], fills: Iterable[Fill], balances: Mapping[str, BalanceState],
                   cursors: Mapping[str, tuple[datetime, Decimal]] | None = None) -> None:
        if self._balances is None:
            self._balances = {}
        self._orders.update((o.client_order_id, replace(o)) for o in orders)
        self._fills.extend(fills)
        self._balances.update((c, replace(b)) for c, b in balances.items())
        self._cursors.update(cursors or {})

    async def fills_after(self, seq: int, limit: int) -> list[tuple[int, Fill]]:
        start = max(seq, 0)
        return [(start + i + 1, f) for i, f in enumerate(self._fills[start:start + limit])]


class PaperStore:
    """:class:`PaperStorage` in the project's database (see the module docstring)."""

    def __init__(self, db: Database, venue: str) -> None:
        self.db = db
        self.venue = venue
        # built once: every order placed or filled is saved, and building the statements each time
        # cost more than running them on a backtest's database
        dialect = db.dialect
        self._save_order = upsert_rows(dialect, table_of(PaperOrderRow), ORDER_COLUMNS, ("client_order_id",))
        self._save_fill = sa.insert(table_of(PaperFillRow))
        self._save_balance = upsert_rows(dialect, table_of(PaperBalanceRow), ("venue", "currency", "total", "locked"),
                                         ("venue", "currency"))
        self._save_cursor = upsert_rows(dialect, table_of(RuntimeValue), ("key", "value", "updated_at"), ("key",))

    async def load(self, seed: Mapping[str, Decimal]) -> tuple[dict[str, BalanceState], list[PaperOrder]]:
        """Balances (seeded from ``seed`` when this venue has none yet) and the open orders."""
        async with self.db.session() as s:
            rows = (await s.exec(select(PaperBalanceRow).where(PaperBalanceRow.venue == self.venue))).all()
            if not rows and seed:
                for currency, amount in seed.items():
                    values = {"venue": self.venue, "currency": currency, "total": Decimal(amount), "locked": ZERO}
                    await s.exec(insert_ignore(self.db.dialect, table_of(PaperBalanceRow), values,
                                               ("venue", "currency")))
                rows = (await s.exec(select(PaperBalanceRow).where(PaperBalanceRow.venue == self.venue))).all()
            balances = {r.currency: BalanceState(r.total, r.locked) for r in rows}
            stmt = (select(PaperOrderRow)
                    .where(PaperOrderRow.venue == self.venue, col(PaperOrderRow.status).in_(OPEN_STATUSES)))
            orders = [_from_row(r) for r in (await s.exec(stmt)).all()]
        orders.sort(key=lambda o: (o.created_at, o.venue_order_id))
        return balances, orders

    def _cursor_key(self, pair: str) -> str:
        return f"paper:{self.venue}:candle:{pair}"

    async def cursors(self) -> dict[str, tuple[datetime, Decimal]]:
        """Per pair, the last candle matched and the liquidity it had left (see ``PaperBook.cursor``)."""
        prefix = self._cursor_key("")
        async with self.db.read() as s:
            rows = (await s.exec(select(RuntimeValue).where(col(RuntimeValue.key).startswith(prefix)))).all()
        out: dict[str, tuple[datetime, Decimal]] = {}
        for r in rows:
            ts, _, left = r.value.partition("|")
            out[r.key[len(prefix):]] = (datetime.fromisoformat(ts), Decimal(left or "0"))
        return out

    async def order_ids(self) -> set[str]:
        """Every client order id this venue has stored (so a new id needs no lookup)."""
        async with self.db.read() as s:
            rows = (await s.exec(select(PaperOrderRow.client_order_id).where(PaperOrderRow.venue == self.venue))).all()
        return set(rows)

    async def get_order(self, client_order_id: str) -> PaperOrder | None:
        async with self.db.read() as s:
            row = await s.get(PaperOrderRow, client_order_id)
        return _from_row(row) if row is not None and row.venue == self.venue else None

    async def save(self, orders: Iterable[PaperOrder], fills: Iterable[Fill],
                   balances: Mapping[str, BalanceState],
                   cursors: Mapping[str, tuple[datetime, Decimal]] | None = None) -> None:
        """Write changed orders, new fills, changed balances and candle cursors in one transaction."""
        order_rows = [_to_values(order, self.venue) for order in orders]
        fill_rows = [{"venue": self.venue, "fill_id": f.fill_id, "client_order_id": f.client_order_id,
                      "venue_order_id": f.venue_order_id, "pair": f.pair, "side": f.side.value, "qty": f.qty,
                      "price": f.price, "fee": f.fee, "fee_currency": f.fee_currency, "liquidity": f.liquidity,
                      "ts": f.ts} for f in fills]
        balance_rows = [{"venue": self.venue, "currency": currency, "total": bal.total, "locked": bal.locked}
                        for currency, bal in balances.items()]
        now = datetime.now(UTC)
        cursor_rows = [{"key": self._cursor_key(pair), "value": f"{ts.isoformat()}|{left}", "updated_at": now}
                       for pair, (ts, left) in (cursors or {}).items()]
        async with self.db.begin() as conn:
            for stmt, rows in ((self._save_order, order_rows), (self._save_fill, fill_rows),
                               (self._save_balance, balance_rows), (self._save_cursor, cursor_rows)):
                if rows:
                    await conn.execute(stmt, rows)

    async def fills_after(self, seq: int, limit: int) -> list[tuple[int, Fill]]:
        t = table_of(PaperFillRow).c  # plain rows: the engine reads every fill right after it is stored
        stmt = (sa.select(t.seq, t.fill_id, t.client_order_id, t.venue_order_id, t.pair, t.side, t.qty, t.price, t.fee,
                       t.fee_currency, t.ts, t.liquidity)
                .where(t.venue == self.venue, t.seq > seq).order_by(t.seq).limit(limit))
        async with self.db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(r.seq or 0, Fill(fill_id=r.fill_id, client_order_id=r.client_order_id,
                                  venue_order_id=r.venue_order_id, pair=r.pair, side=Side(r.side), qty=r.qty,
                                  price=r.price, fee=r.fee, fee_currency=r.fee_currency, ts=r.ts,
                                  liquidity=r.liquidity)) for r in rows]


def _to_values(order: PaperOrder, venue: str) -> dict[str, object]:
    return {
        "client_order_id": order.client_order_id, "venue": venue, "venue_order_id": order.venue_order_id,
        "pair": order.pair, "side": order.side.value, "order_type": order.type.value, "qty": order.qty,
        "limit_price": order.ref_price, "filled_qty": order.filled_qty, "filled_cost": order.filled_cost,
        "fee": order.fee, "fee_currency": order.fee_currency, "status": order.status.value,
        "reject_reason": order.reject_reason[:200], "created_at": order.created_at, "updated_at": order.updated_at,
    }


def _from_row(row: PaperOrderRow) -> PaperOrder:
    return PaperOrder(client_order_id=row.client_order_id, venue_order_id=row.venue_order_id, pair=row.pair,
                      side=Side(row.side), type=OrderType(row.order_type), qty=row.qty,
                      ref_price=row.limit_price if row.limit_price is not None else ZERO,
                      status=OrderStatus(row.status), created_at=row.created_at, updated_at=row.updated_at,
                      fee_currency=row.fee_currency, filled_qty=row.filled_qty, filled_cost=row.filled_cost,
                      fee=row.fee, reject_reason=row.reject_reason)
