"""The trade statistics the risk manager judges entries with: read once, then kept up to date."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.settings.settings_models import TradingSettings
from core.trading import accounting
from core.trading.books import Books
from core.trading.market_data import MarketData
from core.trading.risk import TradeStats
from core.trading.traded import TradedPairs
from core.trading.values import PositionStatus
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from persistence.models import PositionRow

T = datetime(2024, 3, 1, tzinfo=UTC)


def books(db: Database) -> Books:
    clock = SimClock(T)
    venue = PaperExchange(db, {"BTC/USD": MarketRules()}, clock=clock)
    trading = TradingSettings(pairs=("BTC/USD",))
    return Books(db=db, exchange=venue, market_data=MarketData(3600), trading=trading,
                 pairs=TradedPairs(trading.pairs), clock=clock, timezone="UTC", counters=Counter())


async def close(db: Database, *pnls: str, start: int = 0) -> list[PositionRow]:
    """Closed positions with these realized PnLs, stored as the executor's fills leave them."""
    rows = [PositionRow(pair="BTC/USD", status=PositionStatus.CLOSED, realized_pnl=Decimal(p),
                        closed_at=T + timedelta(hours=start + i)) for i, p in enumerate(pnls)]
    async with db.session() as s:
        for row in rows:
            s.add(row)
    return rows


async def stored_stats(db: Database) -> TradeStats:
    async with db.read() as s:
        st = accounting.trade_stats(await accounting.closed_positions(s))
    return TradeStats(st.trades, st.wins, st.avg_win, st.avg_loss)


async def test_closes_reported_after_the_first_read_are_added_once(db: Database) -> None:
    book = books(db)
    early = await close(db, "12.5", "-3.25", "0")
    assert await book.trade_stats() == await stored_stats(db) == TradeStats(3, 1, Decimal("12.5"), Decimal("1.625"))

    # positions closed after the statistics were read: the executor reports them (oldest first),
    # together with one that was stored before the read and is counted already
    later = await close(db, "-1.00000001", "7.3", start=10)
    book.count_closed([early[2], *later])
    assert await book.trade_stats() == await stored_stats(db)
    assert await book.trade_stats() == TradeStats(5, 2, Decimal("9.9"), (Decimal("3.25") + Decimal("1.00000001")) / 3)


async def test_closes_before_the_first_read_come_from_the_database(db: Database) -> None:
    book = books(db)
    rows = await close(db, "4", "-2")
    book.count_closed(rows)  # nothing read yet: the database has them, they are not added twice
    assert await book.trade_stats() == TradeStats(2, 1, Decimal(4), Decimal(2))
