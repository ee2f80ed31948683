"""Accounting: partial fills accumulate at their real prices; PnL is net of entry and exit fees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.trading import accounting
from exchanges.base import Fill, Side
from persistence.db import Database
from persistence.models import LedgerEntry, OrderRow, PositionRow

T = datetime(2024, 3, 1, 12, tzinfo=UTC)


def fill(fid: str, coid: str, side: Side, qty: str, price: str, fee: str, cur: str = "USD", minutes: int = 0) -> Fill:
    return Fill(fid, coid, "v" + coid, "BTC/USD", side, Decimal(qty), Decimal(price), Decimal(fee), cur,
                T + timedelta(minutes=minutes))


async def round_trip(s: AsyncSession, entry_id: str, exit_id: str, qty: str) -> tuple[PositionRow, OrderRow, OrderRow]:
    """A pending position with its entry and exit orders (market, submitted), flushed."""
    pos = PositionRow(pair="BTC/USD", status="pending")
    s.add(pos)
    await s.flush()
    entry = OrderRow(client_order_id=entry_id, venue="paper", pair="BTC/USD", side="buy", order_type="market",
                     qty=Decimal(qty), status="submitted", purpose="entry", position_id=pos.id)
    exit_ = OrderRow(client_order_id=exit_id, venue="paper", pair="BTC/USD", side="sell", order_type="market",
                     qty=Decimal(qty), status="submitted", purpose="exit", position_id=pos.id)
    s.add(entry)
    s.add(exit_)
    await s.flush()
    return pos, entry, exit_


async def test_partial_fills_and_both_fees_in_realized_pnl(db: Database) -> None:
    async with db.session() as s:
        _, entry, exit_ = await round_trip(s, "e1", "x1", "1.0")
        # entry in two partial fills at different prices; one fill with cost 0 would be a bug source
        e1 = await accounting.apply_fill(s, "paper", fill("f1", "e1", Side.BUY, "0.4", "100", "0.104"), entry)
        e2 = await accounting.apply_fill(s, "paper", fill("f2", "e1", Side.BUY, "0.6", "101", "0.15756", minutes=1),
                                         entry)
        assert e1 is not None and e1.opened and e2 is not None and not e2.opened
        assert entry.filled_qty == Decimal("1.0")
        assert entry.avg_price == Decimal("100.60000000")
        # duplicate delivery of the same fill changes nothing
        again = fill("f2", "e1", Side.BUY, "0.6", "101", "0.15756")
        assert await accounting.apply_fill(s, "paper", again, entry) is None
        x1 = await accounting.apply_fill(s, "paper", fill("f3", "x1", Side.SELL, "0.5", "110", "0.143", minutes=5),
                                         exit_)
        assert x1 is not None and not x1.closed
        x2 = await accounting.apply_fill(s, "paper", fill("f4", "x1", Side.SELL, "0.5", "112", "0.1456", minutes=6),
                                         exit_)
        assert x2 is not None and x2.closed
        p = x2.position
    entry_cost = Decimal("0.4") * 100 + Decimal("0.6") * 101
    exit_value = Decimal("0.5") * 110 + Decimal("0.5") * 112
    fees = Decimal("0.104") + Decimal("0.15756") + Decimal("0.143") + Decimal("0.1456")
    assert p.status == "closed"
    assert p.realized_pnl == exit_value - entry_cost - fees
    assert p.entry_fees + p.exit_fees == fees
    assert accounting.entry_price(p) == Decimal("100.60000000")
    assert accounting.exit_price(p) == Decimal("111.00000000")
    async with db.session() as s:
        ledger = (await s.exec(select(LedgerEntry))).all()
    by_cur: dict[str, Decimal] = {}
    for row in ledger:
        by_cur[row.currency] = by_cur.get(row.currency, Decimal(0)) + Decimal(str(row.amount))
    assert by_cur["BTC"] == 0
    assert by_cur["USD"] == exit_value - entry_cost - fees


async def test_fee_in_base_currency_reduces_quantity(db: Database) -> None:
    async with db.session() as s:
        pos = PositionRow(pair="BTC/USD", status="pending")
        s.add(pos)
        await s.flush()
        order = OrderRow(client_order_id="e2", venue="k", pair="BTC/USD", side="buy", order_type="market",
                         qty=Decimal("1"), status="submitted", purpose="entry", position_id=pos.id)
        s.add(order)
        await s.flush()
        eff = await accounting.apply_fill(s, "k", fill("b1", "e2", Side.BUY, "1", "100", "0.002", cur="BTC"), order)
    assert eff is not None
    assert eff.position.qty == Decimal("0.998")
    assert eff.fee_quote == Decimal("0.200")


async def test_prices_far_below_a_cent_keep_their_digits(db: Database) -> None:
    """PEPE/USDT trades near 0.0000007: to 1e-8 its prices would keep two significant digits."""
    async with db.session() as s:
        pos, entry, exit_ = await round_trip(s, "e3", "x3", "3000000")
        await accounting.apply_fill(s, "paper", fill("p1", "e3", Side.BUY, "1000000", "0.0000007679", "0"), entry)
        await accounting.apply_fill(s, "paper", fill("p2", "e3", Side.BUY, "2000000", "0.0000007682", "0"), entry)
        done = await accounting.apply_fill(s, "paper", fill("p3", "x3", Side.SELL, "3000000", "0.0000007653", "0"),
                                           exit_)
        assert done is not None and done.closed
        pos_id, order_id = pos.id, entry.id
    async with db.read() as s:
        stored_pos = await s.get(PositionRow, pos_id)
        stored_order = await s.get(OrderRow, order_id)
    assert stored_pos is not None and stored_order is not None
    assert stored_order.avg_price == Decimal("0.00000076810000")  # 8 significant digits of the exact average
    assert accounting.entry_price(stored_pos) == Decimal("0.00000076810000")
    assert accounting.exit_price(stored_pos) == Decimal("0.00000076530000")
    # prices of 0.1 and above keep exactly 1e-8, as before
    assert accounting.price_q(Decimal("64000.123456789")) == Decimal("64000.12345679")
    assert accounting.price_q(Decimal("0.5")) == Decimal("0.50000000")


def test_trade_stats_and_drawdown() -> None:
    rows = [PositionRow(pair=p, status="closed", realized_pnl=Decimal(v)) for p, v in
            [("BTC/USD", "10"), ("BTC/USD", "-5"), ("ETH/USD", "20"), ("ETH/USD", "-10")]]
    st = accounting.trade_stats(rows)
    assert st.trades == 4 and st.wins == 2 and st.win_rate == Decimal("0.5")
    assert st.profit_factor == Decimal("2.00") and st.expectancy == Decimal("3.75")
    dd = accounting.max_drawdown([(T, Decimal(100)), (T + timedelta(1), Decimal(120)), (T + timedelta(2), Decimal(90)),
                                  (T + timedelta(3), Decimal(130))])
    assert dd.amount == 30 and dd.pct == Decimal("25.00")
    assert dd.start == T + timedelta(1) and dd.end == T + timedelta(2)


def test_period_start_respects_time_zone_and_dst() -> None:
    # 2024-03-31 is the spring DST change in Europe/Berlin
    now = datetime(2024, 3, 31, 12, tzinfo=UTC)
    assert accounting.period_start(now, "day", "Europe/Berlin") == datetime(2024, 3, 30, 23, tzinfo=UTC)
    assert accounting.period_start(now, "week", "Europe/Berlin") == datetime(2024, 3, 24, 23, tzinfo=UTC)
    assert accounting.period_start(now, "month", "Europe/Berlin", back=1) == datetime(2024, 1, 31, 23, tzinfo=UTC)
