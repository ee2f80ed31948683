"""The issue's end-to-end case: paper trading on the fake Kraken's live public feed, a /buy by hand, its
stop triggered by a streamed price, another /buy flattened by /kill; all of it in the database and the
audit log. The trading core is assembled as the service does it (``mode = paper, feed = kraken``)."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlmodel import col, select

from bot.app import build_dispatcher
from bot.audit import AuditLog
from bot.harness import ChatHarness
from core.app.trading_core import TradingCore
from core.settings.config import load_settings
from core.settings.settings_models import ChatSettings
from core.trading.events import EventBus
from exchanges.clock import SystemClock
from persistence.db import Database
from persistence.models import OrderRow, PositionRow
from tests.bot.conftest import ADMIN, BASE_SETTINGS, TRADER
from tests.core.waiting import eventually
from tests.exchanges.fakes import FakeKraken, MarketController

NEVER = textwrap.dedent(
    """
    from strategies.base import Candles, Signal

    NAME = "never"
    PARAMS = {}

    def evaluate(candles: Candles, params: dict) -> Signal:
        return Signal.hold(candles.pair, NAME)
    """
)
PRICE = Decimal(20000)


@asynccontextmanager
async def paper_on_kraken(db: Database, tmp_path: Path) -> AsyncIterator[tuple[TradingCore, MarketController]]:
    module = tmp_path / "never.py"
    module.write_text(NEVER)
    fake = FakeKraken()
    async with fake:
        market = MarketController(fake)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        for k in range(61, 1, -1):
            market.add_candle("BTC/USD", 60, minute - timedelta(minutes=k), PRICE, PRICE + 5, PRICE - 5, PRICE,
                              Decimal(3))
        await market.set_price("BTC/USD", PRICE, Decimal(10))
        settings = load_settings(env={}, dotenv_path=None, overrides={
            "trading": {"feed": "kraken", "pairs": ["BTC/USD"], "timeframe": "1m", "protection_interval_s": 0.05},
            "kraken": {"rest_url": fake.rest_url, "ws_url": fake.ws_url},
            "paper": {"impact_bps": 0},
            "strategies": {"enabled": [], "external": [{"name": "never", "path": str(module),
                                                        "sha256": hashlib.sha256(NEVER.encode()).hexdigest()}]},
        })
        core = TradingCore(settings, db, EventBus(), instance_id="test", leader=lambda: "test",
                           on_failure=lambda exc: None)
        await core.start()
        try:
            yield core, market
        finally:
            await core.stop()


async def _positions(db: Database) -> list[PositionRow]:
    async with db.read() as s:
        return list((await s.exec(select(PositionRow).order_by(col(PositionRow.id)))).all())


async def test_a_manual_buy_on_the_live_feed_is_stopped_out_by_a_streamed_price_and_killed(
        sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    async with paper_on_kraken(db, tmp_path) as (core, market):
        engine = core.engine
        assert engine is not None
        await engine.recovery.prepared.wait()
        await eventually(lambda: engine.md.price("BTC/USD") is not None, 10, "a streamed price")
        chat = ChatHarness(build_dispatcher(db, engine, ChatSettings(**BASE_SETTINGS), clock=SystemClock()),
                           actor=TRADER)

        asked = await chat.send("/buy BTC/USD 0.01")
        assert "Buys 0.01 BTC" in asked.text and "You pay ≈" in asked.text, asked.text
        done = await chat.press(asked.confirm_payload)
        assert done.has_style("success") and "Bought 0.01 BTC" in done.text, done.text
        (pos,) = await _positions(db)
        assert pos.status == "open" and pos.strategy == "manual" and pos.stop_price is not None
        stop = pos.stop_price

        await market.set_price("BTC/USD", stop - 100, Decimal(10))
        await market.fake.push_ticker("BTC/USD")  # streamed: the price is below the stop

        async def stopped() -> bool:
            return [(p.status, p.exit_reason) for p in await _positions(db)] == [("closed", "stop")]

        await eventually(stopped, 15, "the stop exit on the streamed price")

        asked = await chat.send("/buy BTC/USD 0.01")
        again = await chat.press(asked.confirm_payload)
        assert "Bought 0.01 BTC" in again.text, again.text
        asked_kill = await chat.send("/kill", as_=ADMIN)
        killed = await chat.press(asked_kill.confirm_payload, as_=ADMIN)
        assert "KILLED" in killed.text and "closed 1 position" in killed.text, killed.text

        positions = await _positions(db)
        assert [(p.strategy, p.status, p.exit_reason) for p in positions] == [
            ("manual", "closed", "stop"), ("manual", "closed", "kill")]
        async with db.read() as s:
            orders = (await s.exec(select(OrderRow).order_by(col(OrderRow.id)))).all()
        assert [(o.purpose, o.status, o.requested_by) for o in orders] == [
            ("entry", "filled", TRADER.key), ("stop", "filled", "protection"), ("entry", "filled", TRADER.key),
            ("kill", "filled", ADMIN.key)]
        audit = [(r.command, r.decision) for r in await AuditLog(db, SystemClock()).recent(20)]
        assert audit.count(("buy", "confirmed")) == 2 and ("kill", "confirmed") in audit
