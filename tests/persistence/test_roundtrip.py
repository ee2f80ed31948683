"""Money and time round-trip exactly through both engines; migrations match the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlmodel import select

from persistence.db import Database
from persistence.migrate import current_revision, head_revision, pending_diff, upgrade
from persistence.models import LedgerEntry


async def test_empty_database_upgrades_to_head_and_models_match(empty_db: Database) -> None:
    assert await current_revision(empty_db) is None
    await upgrade(empty_db)
    assert await current_revision(empty_db) == head_revision()
    assert await pending_diff(empty_db) == []
    await upgrade(empty_db)  # idempotent
    assert await current_revision(empty_db) == head_revision()


@pytest.mark.parametrize(
    "amount",
    [Decimal("0.00000001"), Decimal("-123456789012.123456789012"), Decimal("1E-18"), Decimal("0"), Decimal("42")],
)
async def test_decimal_round_trips_exactly(db: Database, amount: Decimal) -> None:
    when = datetime(2024, 3, 31, 1, 59, 59, 123456, tzinfo=UTC)
    async with db.session() as s:
        s.add(LedgerEntry(ts=when, venue="paper", currency="BTC", amount=amount, kind="test"))
    async with db.session() as s:
        row = (await s.exec(select(LedgerEntry))).one()
    assert row.amount == amount
    assert isinstance(row.amount, Decimal)
    assert row.ts == when
    assert row.ts.tzinfo is not None and row.ts.utcoffset() == timedelta(0)


async def test_datetime_in_other_zone_is_stored_as_the_same_instant(db: Database) -> None:
    local = datetime(2024, 10, 27, 2, 30, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    async with db.session() as s:
        s.add(LedgerEntry(ts=local, venue="paper", currency="USD", amount=Decimal("1.5"), kind="test"))
    async with db.session() as s:
        row = (await s.exec(select(LedgerEntry))).one()
    assert row.ts == local
    assert row.ts.utcoffset() == timedelta(0)


async def test_naive_datetime_and_float_money_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with db.session() as s:
            s.add(LedgerEntry(ts=datetime(2024, 1, 1), venue="p", currency="USD", amount=Decimal(1), kind="t"))
    with pytest.raises(Exception, match="Decimal, not float"):
        async with db.session() as s:
            s.add(LedgerEntry(venue="p", currency="USD", amount=0.1, kind="t"))  # type: ignore[arg-type]
    async with db.session() as s:
        assert (await s.exec(select(LedgerEntry))).all() == []


async def test_time_order_is_preserved_in_sql(db: Database) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    stamps = [base + timedelta(microseconds=n) for n in (5, 1, 1_000_000, 3)]
    async with db.session() as s:
        for i, t in enumerate(stamps):
            s.add(LedgerEntry(ts=t, venue="p", currency="USD", amount=Decimal(i), kind="t"))
    async with db.session() as s:
        rows = (await s.exec(select(LedgerEntry).order_by(LedgerEntry.ts))).all()  # type: ignore[arg-type]
    assert [r.ts for r in rows] == sorted(stamps)


async def test_database_clock_is_utc(db: Database) -> None:
    now = await db.now()
    assert now.tzinfo is not None
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5
