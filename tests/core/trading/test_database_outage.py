"""A database outage while the engine consumes a replay feed: no candle is skipped or counted twice.

PostgreSQL loses the engine for real: its login role is refused and its connections terminated
(other tests on the same server are untouched). SQLite has no server to stop; there the tables the
engine writes are renamed away (:class:`tests.persistence.outage.TablesAway`), so every write of a
candle fails with SQLite's own error until they are back.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from exchanges.clock import SimClock
from exchanges.replay import ReplayFeed
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import EquitySnapshot, PositionRow, RuntimeValue
from tests.conftest import PG_URL, require_pg
from tests.core.engine_rig import PAIR, T0, Rig, ScriptedStrategy, make_candle
from tests.core.waiting import eventually
from tests.persistence.outage import TablesAway

ENGINE_TABLES = ("equity_snapshots", "runtime_values", "paper_orders", "paper_fills", "paper_balances", "orders",
                 "positions", "fills", "ledger", "trading_state")


@dataclass
class Outage:
    db: Database
    cut: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
async def outage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outage]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/outage.db")
        await db.start()
        await upgrade(db)
        async with TablesAway(db, *ENGINE_TABLES) as away:
            yield Outage(db, away.start, away.end)
        await db.stop()
        return
    require_pg()
    import asyncpg

    role = schema = "tc_outage_" + secrets.token_hex(4)
    admin_dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    db = Database(make_url(PG_URL).set(username=role).render_as_string(hide_password=False), schema=schema)
    await db.start()
    await upgrade(db)

    async def cut() -> None:
        await admin.execute(f"ALTER ROLE {role} NOLOGIN")
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)

    async def restore() -> None:
        await admin.execute(f"ALTER ROLE {role} LOGIN")

    try:
        yield Outage(db, cut, restore)
    finally:
        await restore()
        await db.stop()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_an_outage_holds_the_feed_pauses_entries_and_skips_no_candle(outage: Outage) -> None:
    db = outage.db
    n = 48
    candles = [make_candle(i, "100") for i in range(n)]
    clock = SimClock(T0)
    feed = ReplayFeed({PAIR: candles}, clock=clock, speed=40)
    ended = asyncio.Event()
    rig = Rig(db, ScriptedStrategy({3: "buy", 40: "sell"}), clock=clock, feed=feed, on_feed_end=ended.set,
              trading={"protection_interval_s": 0.05})
    await rig.start()
    await eventually(lambda: feed.emitted >= 10, what="ten candles")
    await outage.cut()
    counters = rig.engine.counters

    def met() -> int:  # the database errors, and the venue's (the paper venue cannot store its state)
        return sum(counters[k] for k in ("database_errors", "feed_errors")) + rig.engine.errors.total

    await eventually(lambda: met() >= 4,
                     what="the engine meeting the outage a few times")
    assert rig.engine.state.state == "paused"  # entries stop at once, before the database can store it
    await outage.restore()
    await asyncio.wait_for(ended.wait(), 60)
    await eventually(lambda: not rig.engine.watch.down, what="the outage recorded")
    await rig.stop()

    async with db.read() as s:
        snapshots = (await s.exec(select(func.count()).select_from(EquitySnapshot))).one()
        cursor = await s.get(RuntimeValue, f"last_candle:{PAIR}")
        statuses = (await s.exec(select(PositionRow.status))).all()
    assert snapshots == n  # every candle processed, none twice
    assert cursor is not None and cursor.value == candles[-1].ts.isoformat()
    assert list(statuses) == ["closed"]  # bought before the outage, sold at bar 40 (exits go on while paused)
    stored = await rig.engine.state_store.load()
    assert (stored.state, stored.reason) == ("paused", "database unreachable")
    kinds = rig.kinds()
    assert kinds.count("database_outage") == 1 and "auto_paused" in kinds
    assert "reconcile_difference" not in kinds
    (event,) = [e for e in rig.seen if e.kind == "database_outage"]
    assert event.paused and event.retries >= 3  # type: ignore[attr-defined]


async def test_the_feed_and_the_protection_loop_seeing_the_database_back_store_one_outage(tmp_path: Path) -> None:
    """Both loops call ``recovered`` when the database answers; the race gave two alerts."""
    from collections import Counter

    from core.trading.events import EventBus
    from core.trading.outage import DatabaseWatch
    from core.trading.state import StateStore, TradingStates

    db = Database(f"sqlite:///{tmp_path}/race.db")
    await db.start()
    await upgrade(db)
    events = EventBus()
    seen = events.subscribe()
    states = TradingStates(StateStore(db, "default"), events)
    watch = DatabaseWatch(db, states, events, Counter())
    watch.failed(OSError("connection refused"), "feed")
    await asyncio.gather(watch.recovered(), watch.recovered(), watch.recovered())
    await db.stop()
    kinds = []
    while not seen.empty():
        kinds.append(seen.get_nowait().kind)
    assert kinds.count("database_outage") == 1 and not watch.down
