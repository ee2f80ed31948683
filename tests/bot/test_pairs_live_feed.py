"""/pairs add on paper trading with a live feed (the fake Kraken's public REST and WebSocket): the pair is
checked against Kraken's markets, traded on the paper venue with Kraken's real rules for it, back-filled
from REST before its first scan and streamed from then on; a pair Kraken does not list is refused and
nothing changes. The trading core is assembled as the service does it (``mode = paper, feed = kraken``)."""

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
from bot.harness import ChatHarness
from core.app.trading_core import TradingCore
from core.settings.config import load_settings
from core.settings.settings_models import ChatSettings
from core.trading.events import EventBus
from exchanges.clock import SystemClock
from persistence.db import Database
from persistence.models import OrderRow
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
BTC, XRP = "BTC/USD", "XRP/USD"

PRICES = {BTC: Decimal(20000), XRP: Decimal("0.5")}


@asynccontextmanager
async def paper_on_kraken(db: Database, tmp_path: Path) -> AsyncIterator[tuple[TradingCore, MarketController]]:
    module = tmp_path / "never.py"
    module.write_text(NEVER)
    async with FakeKraken() as fake:
        market = MarketController(fake)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        for pair, price in PRICES.items():
            for k in range(61, 1, -1):
                market.add_candle(pair, 60, minute - timedelta(minutes=k), price, price, price, price, Decimal(3000))
            await market.set_price(pair, price, price / 1000)
        settings = load_settings(env={}, dotenv_path=None, overrides={
            "trading": {"feed": "kraken", "pairs": [BTC], "timeframe": "1m", "protection_interval_s": 0.05},
            "kraken": {"rest_url": fake.rest_url, "ws_url": fake.ws_url},
            "paper": {"impact_bps": 0},
            "service": {"data_dir": str(tmp_path)},  # the pairs overlay /pairs writes
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


async def test_pairs_add_on_a_live_feed_trades_the_pair_with_the_venues_real_rules(
        sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    async with paper_on_kraken(db, tmp_path) as (core, market):
        engine, paper = core.engine, core.exchange
        assert engine is not None and paper is not None
        await engine.recovery.prepared.wait()
        chat = ChatHarness(build_dispatcher(db, engine, ChatSettings(**BASE_SETTINGS), clock=SystemClock()),
                           actor=ADMIN)

        asked = await chat.send(f"/pairs add {XRP}")
        assert f"Confirm /pairs add {XRP}" in asked.text, asked.text
        done = await chat.press(asked.confirm_payload)
        assert done.has_style("success") and f"{XRP} added" in done.text and "from kraken" in done.text, done.text
        assert engine.pairs == (BTC, XRP) and "XRP/USD" in (tmp_path / "pairs.toml").read_text()
        assert engine.md.bars(XRP) >= 50  # back-filled from Kraken's REST candles before any scan

        rules = (await paper.markets())[XRP]  # Kraken's rules for XRP/USD, not BTC/USD's copied over
        assert (rules.min_qty, rules.price_tick, rules.min_notional) == (Decimal(10), Decimal("0.00001"),
                                                                          Decimal("0.5"))
        assert engine.markets[XRP] == rules

        await market.set_price(XRP, Decimal("0.6"), Decimal("0.0006"))
        await market.fake.push_ticker(XRP)  # streamed now: the live stream subscribed on its open connection
        await eventually(lambda: engine.md.price(XRP) == Decimal("0.6"), 10, "a streamed XRP price")

        refused = await chat.send(f"/buy {XRP} 5", as_=TRADER)  # below Kraken's 10 XRP minimum
        assert "minimum" in refused.text.lower() and not refused.buttons, refused.text
        asked = await chat.send(f"/buy {XRP} 20", as_=TRADER)
        bought = await chat.press(asked.confirm_payload, as_=TRADER)
        assert "Bought 20 XRP" in bought.text, bought.text
        async with db.read() as s:
            orders = (await s.exec(select(OrderRow).order_by(col(OrderRow.id)))).all()
        assert [(o.pair, o.status) for o in orders] == [(XRP, "filled")]


async def test_pairs_add_of_a_pair_the_live_venue_does_not_list_is_refused_and_changes_nothing(
        sqlite_db: Database, tmp_path: Path) -> None:
    async with paper_on_kraken(sqlite_db, tmp_path) as (core, market):
        engine = core.engine
        assert engine is not None
        await engine.recovery.prepared.wait()
        chat = ChatHarness(build_dispatcher(sqlite_db, engine, ChatSettings(**BASE_SETTINGS), clock=SystemClock()),
                           actor=ADMIN)
        refused = await chat.send("/pairs add DOGE/USD")  # Kraken lists DOGE/USDT, not DOGE/USD
        assert "kraken does not list DOGE/USD" in refused.text and "nothing changed" in refused.text, refused.text
        assert not refused.buttons
        assert engine.pairs == (BTC,) and "DOGE/USD" not in await core.exchange.markets()  # type: ignore[union-attr]
        assert not (tmp_path / "pairs.toml").exists()
        assert not [m for _, m in market.fake.ws_received if "DOGE" in str(m)]  # never subscribed


async def test_pairs_add_in_live_mode_subscribes_the_venues_own_feed_and_back_fills_from_its_rest(
        sqlite_db: Database, tmp_path: Path) -> None:
    module = tmp_path / "never.py"
    module.write_text(NEVER)
    async with FakeKraken() as fake:
        market = MarketController(fake)
        market.set_balance("USD", Decimal(1000))
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        for pair, price in PRICES.items():
            for k in range(61, 1, -1):
                market.add_candle(pair, 60, minute - timedelta(minutes=k), price, price, price, price, Decimal(3000))
            await market.set_price(pair, price, price / 1000)
        settings = load_settings(env={}, dotenv_path=None, overrides={
            "trading": {"mode": "live", "venue": "kraken", "pairs": [BTC], "timeframe": "1m"},
            "kraken": {"api_key": fake.api_key, "api_secret": fake.api_secret, "rest_url": fake.rest_url,
                       "ws_url": fake.ws_url},
            "service": {"data_dir": str(tmp_path)},
            "strategies": {"enabled": [], "external": [{"name": "never", "path": str(module),
                                                        "sha256": hashlib.sha256(NEVER.encode()).hexdigest()}]},
        })
        core = TradingCore(settings, sqlite_db, EventBus(), instance_id="test", leader=lambda: "test",
                           on_failure=lambda exc: None)
        await core.start()
        try:
            engine = core.engine
            assert engine is not None
            await engine.recovery.prepared.wait()
            chat = ChatHarness(build_dispatcher(sqlite_db, engine, ChatSettings(**BASE_SETTINGS),
                                                clock=SystemClock()), actor=ADMIN)
            refused = await chat.send("/pairs add DOGE/USD")
            assert "kraken does not list DOGE/USD" in refused.text and not refused.buttons, refused.text

            asked = await chat.send(f"/pairs add {XRP}")
            done = await chat.press(asked.confirm_payload)
            assert done.has_style("success") and "from kraken" in done.text, done.text
            assert engine.pairs == (BTC, XRP) and engine.md.bars(XRP) >= 50
            assert engine.markets[XRP].min_qty == Decimal(10)
            # subscribed on the connection opened at start, without a restart (the engine's own handling of
            # streamed prices is the paper test's: here Kraken's private-call rate limit paces the engine)
            subscribed = [m["params"]["channel"] for _, m in fake.ws_received
                          if m.get("method") == "subscribe" and m["params"].get("symbol") == [XRP]]
            assert subscribed == ["ohlc", "ticker"]
            assert fake.ws_connections["public"] == 1
        finally:
            await core.stop()


async def test_pairs_remove_on_a_live_feed_unsubscribes_the_stream(sqlite_db: Database, tmp_path: Path) -> None:
    async with paper_on_kraken(sqlite_db, tmp_path) as (core, market):
        engine = core.engine
        assert engine is not None
        await engine.recovery.prepared.wait()
        chat = ChatHarness(build_dispatcher(sqlite_db, engine, ChatSettings(**BASE_SETTINGS), clock=SystemClock()),
                           actor=ADMIN)
        added = await chat.press((await chat.send(f"/pairs add {XRP}")).confirm_payload)
        assert f"{XRP} added" in added.text, added.text
        removed = await chat.press((await chat.send(f"/pairs remove {XRP}")).confirm_payload)
        assert f"{XRP} removed" in removed.text and engine.pairs == (BTC,), removed.text

        def sent(method: str) -> list[str]:
            return [m["params"]["channel"] for _, m in market.fake.ws_received
                    if m.get("method") == method and m["params"].get("symbol") == [XRP]]

        await eventually(lambda: sent("unsubscribe") == ["ohlc", "ticker"], 5, "XRP unsubscribed")
        assert sent("subscribe") == ["ohlc", "ticker"] and market.fake.ws_connections["public"] == 1
