"""Circuit breakers auto-pause entries (and say why) on stale data and bursts of exchange errors:
once per burst, and even while the database cannot store it yet."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from core.settings.config import load_settings
from exchanges.errors import TemporaryError
from persistence.db import Database
from persistence.migrate import upgrade
from tests.core.engine_rig import Rig
from tests.core.waiting import eventually
from tests.persistence.outage import TablesAway


async def test_stale_data_auto_pauses_with_an_alert(db: Database) -> None:
    settings = load_settings(env={}, dotenv_path=None, overrides={"trading": {"stale_data_s": 600}})
    rig = Rig(db, settings=settings)
    await rig.start()
    await rig.candle("100")
    rig.clock.advance(timedelta(hours=2))  # no candle for two hours of market time
    await rig.engine._check_circuit_breakers()
    assert rig.engine.state.state == "paused"
    assert "old" in rig.engine.state.reason
    assert "auto_paused" in rig.kinds()
    await rig.stop()


async def test_error_burst_auto_pauses(db: Database) -> None:
    settings = load_settings(env={}, dotenv_path=None, overrides={"trading": {"error_burst": 3, "error_window_s": 60}})
    rig = Rig(db, settings=settings)
    await rig.start()
    for _ in range(3):
        rig.engine._exchange_error(TemporaryError("timeout"))
    for _ in range(50):
        if rig.engine.state.state == "paused":
            break
        await asyncio.sleep(0.02)
    assert rig.engine.state.state == "paused" and "exchange errors" in rig.engine.state.reason
    await rig.stop()


def _pause_running() -> bool:
    return any(t.get_name() == "engine:auto-pause" and not t.done() for t in asyncio.all_tasks())


async def test_a_long_error_burst_pauses_once_with_one_alert(db: Database) -> None:
    rig = Rig(db, trading={"error_burst": 3, "error_window_s": 60})
    await rig.start()
    for _ in range(6):  # every error from the third on is a burst
        rig.engine._exchange_error(TemporaryError("timeout"))
    await eventually(lambda: rig.engine.state.state == "paused" and not _pause_running(), what="the pause")
    assert rig.kinds().count("auto_paused") == 1
    assert rig.kinds().count("state_changed") == 1
    await rig.stop()


async def test_an_error_burst_while_the_database_is_away_pauses_at_once_and_stores_it_later(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/breaker.db")
    await db.start()
    await upgrade(db)
    async with TablesAway(db, "trading_state") as away:
        rig = Rig(db, trading={"error_burst": 3, "error_window_s": 60, "protection_interval_s": 0.05})
        await rig.start()
        await away.start()
        for _ in range(3):
            rig.engine._exchange_error(TemporaryError("timeout"))
        await eventually(lambda: rig.engine.state.state == "paused", what="entries paused in memory")
        assert "exchange errors" in rig.engine.state.reason and rig.engine.failed is None
        await away.end()
        await eventually(lambda: not rig.engine.watch.down, what="the pause stored")
        stored = await rig.engine.state_store.load()
        assert (stored.state, stored.changed_by) == ("paused", "risk") and "exchange errors" in stored.reason
        assert "auto_paused" in rig.kinds() and (await rig.engine.health()).ok
        await rig.stop()
    await db.stop()
