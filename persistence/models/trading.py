"""Trading tables: state, orders, fills, positions, ledger, equity, paper venue, runtime cursors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from persistence.models._common import money, opt_money, ts


class TradingStateRow(SQLModel, table=True):
    """One row per deployment group: running | paused | killed, and why."""

    __tablename__ = "trading_state"
    group_name: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=500)
    changed_by: str = Field(default="", max_length=200)
    changed_at: datetime = ts()


class OrderRow(SQLModel, table=True):
    """Our record of an order, written (status ``new``) before it is sent to the venue."""

    __tablename__ = "orders"
    id: int | None = Field(default=None, primary_key=True)
    client_order_id: str = Field(max_length=64, unique=True)
    venue: str = Field(max_length=32)
    venue_order_id: str | None = Field(default=None, max_length=128, index=True)
    pair: str = Field(max_length=32, index=True)
    side: str = Field(max_length=8)
    order_type: str = Field(max_length=16)
    qty: Decimal = money()
    limit_price: Decimal | None = opt_money()
    status: str = Field(max_length=24, index=True)
    filled_qty: Decimal = money()
    avg_price: Decimal | None = opt_money()
    fee: Decimal = money()
    fee_currency: str = Field(default="", max_length=16)
    purpose: str = Field(max_length=24)
    position_id: int | None = Field(default=None, index=True)
    reason: str = Field(default="", max_length=500)
    requested_by: str = Field(default="", max_length=200)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = ts()
    updated_at: datetime = ts()
    submitted_at: datetime | None = ts(nullable=True, default_now=False)


class FillRow(SQLModel, table=True):
    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("venue", "fill_id", name="uq_fills_venue_fill"),)
    id: int | None = Field(default=None, primary_key=True)
    venue: str = Field(max_length=32)
    fill_id: str = Field(max_length=128)
    client_order_id: str = Field(max_length=64, index=True)
    venue_order_id: str = Field(default="", max_length=128)
    pair: str = Field(max_length=32, index=True)
    side: str = Field(max_length=8)
    qty: Decimal = money()
    price: Decimal = money()
    fee: Decimal = money()
    fee_currency: str = Field(default="", max_length=16)
    fee_quote: Decimal = money()
    liquidity: str = Field(default="taker", max_length=8)
    ts: datetime = ts(index=True)


class PositionRow(SQLModel, table=True):
    """A long spot position, from first entry fill to the last exit fill.

    Quantities and costs are maintained from fills (the ledger); stops live here and are written
    on every change so a restart resumes protection where it stopped.
    """

    __tablename__ = "positions"
    __table_args__ = (Index("ix_positions_status_closed_at", "status", "closed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    pair: str = Field(max_length=32, index=True)
    status: str = Field(max_length=16, index=True)
    qty: Decimal = money()
    entry_qty: Decimal = money()
    entry_cost: Decimal = money()
    entry_fees: Decimal = money()
    exit_qty: Decimal = money()
    exit_value: Decimal = money()
    exit_fees: Decimal = money()
    realized_pnl: Decimal = money()
    stop_price: Decimal | None = opt_money()
    take_profit: Decimal | None = opt_money()
    trailing_pct: Decimal | None = opt_money()
    high_water: Decimal | None = opt_money()
    strategy: str = Field(default="", max_length=64)
    reason: str = Field(default="", max_length=500)
    exit_reason: str = Field(default="", max_length=200)
    opened_at: datetime = ts()
    closed_at: datetime | None = ts(nullable=True, default_now=False)


class LedgerEntry(SQLModel, table=True):
    """Signed cash and asset movements: every fill writes its base, quote and fee legs."""

    __tablename__ = "ledger"
    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = ts(index=True)
    venue: str = Field(max_length=32)
    currency: str = Field(max_length=16)
    amount: Decimal = money()
    kind: str = Field(max_length=16)
    ref: str = Field(default="", max_length=128)
    pair: str = Field(default="", max_length=32)


class EquitySnapshot(SQLModel, table=True):
    __tablename__ = "equity_snapshots"
    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = ts(index=True)
    equity: Decimal = money()
    cash: Decimal = money()
    positions_value: Decimal = money()


class PaperBalanceRow(SQLModel, table=True):
    __tablename__ = "paper_balances"
    venue: str = Field(primary_key=True, max_length=32)
    currency: str = Field(primary_key=True, max_length=16)
    total: Decimal = money()
    locked: Decimal = money()


class PaperOrderRow(SQLModel, table=True):
    __tablename__ = "paper_orders"
    client_order_id: str = Field(primary_key=True, max_length=64)
    venue: str = Field(max_length=32)
    venue_order_id: str = Field(max_length=64, unique=True)
    pair: str = Field(max_length=32)
    side: str = Field(max_length=8)
    order_type: str = Field(max_length=16)
    qty: Decimal = money()
    limit_price: Decimal | None = opt_money()
    filled_qty: Decimal = money()
    filled_cost: Decimal = money()
    fee: Decimal = money()
    fee_currency: str = Field(default="", max_length=16)
    status: str = Field(max_length=24, index=True)
    reject_reason: str = Field(default="", max_length=200)
    created_at: datetime = ts()
    updated_at: datetime = ts()


class PaperFillRow(SQLModel, table=True):
    __tablename__ = "paper_fills"
    seq: int | None = Field(default=None, primary_key=True)
    venue: str = Field(max_length=32)
    fill_id: str = Field(max_length=64, unique=True)
    client_order_id: str = Field(max_length=64, index=True)
    venue_order_id: str = Field(max_length=64)
    pair: str = Field(max_length=32)
    side: str = Field(max_length=8)
    qty: Decimal = money()
    price: Decimal = money()
    fee: Decimal = money()
    fee_currency: str = Field(max_length=16)
    liquidity: str = Field(max_length=8)
    ts: datetime = ts()


class RuntimeValue(SQLModel, table=True):
    """Small named cursors (replay position, last fill cursor) that must survive a restart."""

    __tablename__ = "runtime_values"
    key: str = Field(primary_key=True, max_length=128)
    value: str = Field(max_length=2000)
    updated_at: datetime = ts()
