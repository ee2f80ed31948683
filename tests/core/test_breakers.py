"""Circuit breakers auto-pause entries (and say why) on stale data and bursts of exchange errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core.config import load_settings
from exchanges.errors import TemporaryError
from persistence.db import Database
from tests.core.engine_rig import Rig


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
