"""Accounting: fills -> ledger and positions; PnL and trade statistics, all in Decimal.

Realized PnL is net of entry *and* exit fees: each exit fill realizes
``qty * price - exit_fee - qty * (entry_cost + entry_fees) / entry_qty``, so a position closed in
several pieces sums to ``exit_value - exit_fees - entry_cost - entry_fees``. Fees charged in the base
asset are converted at the fill price and reduce the quantity received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading.values import OPEN_STATES, PositionStatus
from exchanges.base import Fill, Side
from persistence.models import EquitySnapshot, FillRow, LedgerEntry, OrderRow, PositionRow
from persistence.upsert import table_of

ZERO = Decimal(0)
Q = Decimal("0.00000001")  # money: amounts, fees and PnL are kept to 1e-8 of their currency
PRICE_DIGITS = 8


def price_q(price: Decimal) -> Decimal:
    """An average price kept to 1e-8, or to ``PRICE_DIGITS`` significant digits where that is finer.

    A fixed 1e-8 would leave a pair priced in millionths of its quote (PEPE/USDT at 0.0000007679) two
    significant digits (0.00000077): its entry and exit prices would be shown and stored off by a few
    tenths of a percent. Prices of 0.1 and above keep exactly 1e-8."""
    if not price:
        return price.quantize(Q)
    return price.quantize(Q.min(Decimal(1).scaleb(price.adjusted() - PRICE_DIGITS + 1)))
# a fill's ledger legs in one statement: nothing reads them back as objects, and the ORM would insert
# them one by one, each returning its id
_LEDGER_LEGS = insert(table_of(LedgerEntry))


@dataclass(frozen=True, slots=True)
class FillEffect:
    position: PositionRow
    opened: bool
    closed: bool
    realized: Decimal
    fee_quote: Decimal


def split_pair(pair: str) -> tuple[str, str]:
    base, quote = pair.split("/")
    return base, quote


async def apply_fill(session: AsyncSession, venue: str, fill: Fill, order: OrderRow,
                     known: set[str] | None = None) -> FillEffect | None:
    """Record one fill (idempotent on venue + fill id) and update its position. None if seen before.

    ``known``: fill ids already recorded, when the caller loaded them in bulk (saves a query per
    fill); the set is updated with this fill.
    """
    if known is None:
        stmt = select(FillRow.id).where(FillRow.venue == venue, FillRow.fill_id == fill.fill_id)
        seen = (await session.exec(stmt)).first()
        if seen is not None:
            return None
    elif fill.fill_id in known:
        return None
    else:
        known.add(fill.fill_id)
    base, quote = split_pair(fill.pair)
    fee_quote = fill.fee * fill.price if fill.fee_currency == base else fill.fee
    qty_delta = fill.qty
    if fill.fee_currency == base and fill.side == Side.BUY:
        qty_delta = fill.qty - fill.fee
    session.add(FillRow(venue=venue, fill_id=fill.fill_id, client_order_id=fill.client_order_id,
                        venue_order_id=fill.venue_order_id, pair=fill.pair, side=fill.side.value, qty=fill.qty,
                        price=fill.price, fee=fill.fee, fee_currency=fill.fee_currency, fee_quote=fee_quote,
                        liquidity=fill.liquidity, ts=fill.ts))
    sign = 1 if fill.side == Side.BUY else -1
    notional = fill.qty * fill.price
    legs = [{"ts": fill.ts, "venue": venue, "currency": currency, "amount": amount, "kind": kind, "ref": fill.fill_id,
             "pair": fill.pair}
            for currency, amount, kind in ((base, sign * fill.qty, "trade"), (quote, -sign * notional, "trade"),
                                           (fill.fee_currency or quote, -fill.fee, "fee")) if amount]
    if legs:
        await (await session.connection()).execute(_LEDGER_LEGS, legs)

    # order bookkeeping: cumulative quantity, average price, fees
    prev_cost = (order.avg_price or ZERO) * order.filled_qty
    order.filled_qty += fill.qty
    order.avg_price = price_q((prev_cost + notional) / order.filled_qty) if order.filled_qty else None
    order.fee += fee_quote
    order.fee_currency = quote
    order.updated_at = fill.ts
    session.add(order)

    if order.position_id is None:
        return None
    pos = await session.get(PositionRow, order.position_id)
    if pos is None:
        return None
    opened = closed = False
    realized = ZERO
    if fill.side == Side.BUY:
        opened = pos.status == PositionStatus.PENDING
        pos.status = PositionStatus.OPEN
        pos.qty += qty_delta
        pos.entry_qty += qty_delta
        pos.entry_cost += notional
        pos.entry_fees += fee_quote
        if opened:
            pos.opened_at = fill.ts
    else:
        basis = (pos.entry_cost + pos.entry_fees) / pos.entry_qty if pos.entry_qty else ZERO
        realized = fill.qty * fill.price - fee_quote - fill.qty * basis
        pos.qty -= fill.qty
        pos.exit_qty += fill.qty
        pos.exit_value += notional
        pos.exit_fees += fee_quote
        pos.realized_pnl += realized
        if pos.qty <= 0:
            pos.qty = ZERO
            pos.status = PositionStatus.CLOSED
            pos.closed_at = fill.ts
            pos.exit_reason = pos.exit_reason or order.purpose
            # exact total, free of per-fill rounding
            pos.realized_pnl = pos.exit_value - pos.exit_fees - pos.entry_cost - pos.entry_fees
            closed = True
    session.add(pos)
    return FillEffect(pos, opened, closed, realized, fee_quote)


def entry_price(pos: PositionRow) -> Decimal:
    return price_q(pos.entry_cost / pos.entry_qty) if pos.entry_qty else ZERO


def exit_price(pos: PositionRow) -> Decimal | None:
    return price_q(pos.exit_value / pos.exit_qty) if pos.exit_qty else None


def pnl_pct(pos: PositionRow) -> Decimal:
    cost = pos.entry_cost + pos.entry_fees
    return (pos.realized_pnl / cost * 100).quantize(Decimal("0.01")) if cost else ZERO


# -- periods ---------------------------------------------------------------------------------


def period_start(now: datetime, unit: str, tz: str, back: int = 0) -> datetime:
    """Start of the day/week (Monday)/month containing ``now`` in ``tz``, ``back`` periods earlier."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone).date()
    if unit == "day":
        d = local - timedelta(days=back)
    elif unit == "week":
        d = local - timedelta(days=local.weekday()) - timedelta(weeks=back)
    elif unit == "month":
        y, m = local.year, local.month - back
        while m <= 0:
            y, m = y - 1, m + 12
        d = date(y, m, 1)
    else:
        raise ValueError(unit)
    return datetime.combine(d, time(0), zone).astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True, slots=True)
class TradeStatsResult:
    trades: int
    wins: int
    losses: int
    realized: Decimal
    fees: Decimal
    gross_win: Decimal
    gross_loss: Decimal
    win_rate: Decimal | None
    profit_factor: Decimal | None
    expectancy: Decimal | None
    avg_win: Decimal
    avg_loss: Decimal
    by_pair: dict[str, tuple[int, Decimal, int]]  # trades, pnl, wins


def trade_stats(closed: list[PositionRow]) -> TradeStatsResult:
    wins = [p.realized_pnl for p in closed if p.realized_pnl > 0]
    losses = [p.realized_pnl for p in closed if p.realized_pnl <= 0]
    gross_win = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    n = len(closed)
    realized = gross_win - gross_loss
    by_pair: dict[str, tuple[int, Decimal, int]] = {}
    for p in closed:
        t, pnl, w = by_pair.get(p.pair, (0, ZERO, 0))
        by_pair[p.pair] = (t + 1, pnl + p.realized_pnl, w + (1 if p.realized_pnl > 0 else 0))
    return TradeStatsResult(
        trades=n, wins=len(wins), losses=len(losses), realized=realized,
        fees=sum((p.entry_fees + p.exit_fees for p in closed), ZERO),
        gross_win=gross_win, gross_loss=gross_loss,
        win_rate=(Decimal(len(wins)) / n).quantize(Decimal("0.0001")) if n else None,
        profit_factor=(gross_win / gross_loss).quantize(Decimal("0.01")) if gross_loss else None,
        expectancy=(realized / n).quantize(Q) if n else None,
        avg_win=(gross_win / len(wins)) if wins else ZERO,
        avg_loss=(gross_loss / len(losses)) if losses else ZERO,
        by_pair=by_pair,
    )


async def closed_positions(session: AsyncSession, since: datetime | None = None) -> list[PositionRow]:
    stmt = select(PositionRow).where(PositionRow.status == PositionStatus.CLOSED)
    if since is not None:
        stmt = stmt.where(col(PositionRow.closed_at) >= since)
    return list((await session.exec(stmt.order_by(col(PositionRow.closed_at)))).all())


async def open_positions(session: AsyncSession) -> list[PositionRow]:
    stmt = select(PositionRow).where(PositionRow.status == PositionStatus.OPEN).order_by(col(PositionRow.id))
    return list((await session.exec(stmt)).all())


@dataclass(frozen=True, slots=True)
class Drawdown:
    amount: Decimal
    pct: Decimal
    start: datetime | None
    end: datetime | None


def max_drawdown(points: list[tuple[datetime, Decimal]]) -> Drawdown:
    """Largest peak-to-trough fall of an equity series, with the peak and trough times."""
    best = Drawdown(ZERO, ZERO, None, None)
    peak_v: Decimal | None = None
    peak_t: datetime | None = None
    for t, v in points:
        if peak_v is None or v > peak_v:
            peak_v, peak_t = v, t
            continue
        dd = peak_v - v
        if dd > best.amount:
            pct = (dd / peak_v * 100).quantize(Decimal("0.01")) if peak_v else ZERO
            best = Drawdown(dd, pct, peak_t, t)
    return best


async def equity_points(session: AsyncSession, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
    stmt = select(col(EquitySnapshot.ts), col(EquitySnapshot.equity))
    if since is not None:
        stmt = stmt.where(col(EquitySnapshot.ts) >= since)
    rows = (await session.exec(stmt.order_by(col(EquitySnapshot.ts)))).all()
    return [(t, e) for t, e in rows]


def sharpe(points: list[tuple[datetime, Decimal]], bar_seconds: int) -> float | None:
    """Sharpe ratio of per-bar equity returns, annualized for the bar interval (365-day crypto year)."""
    if len(points) < 3:
        return None
    vals = [float(v) for _, v in points]
    rets = [(b / a - 1.0) for a, b in pairwise(vals) if a > 0]
    if len(rets) < 2:
        return None
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(365 * 86400 / bar_seconds)


async def orders_open(session: AsyncSession) -> list[OrderRow]:
    stmt = select(OrderRow).where(col(OrderRow.status).in_(OPEN_STATES))
    return list((await session.exec(stmt.order_by(col(OrderRow.id)))).all())
