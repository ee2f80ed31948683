"""The trading core assembled as the service does for ``mode = paper, feed = kraken``, against the fake
Kraken's public REST and WebSocket: history back-filled before the first scan, live candles reaching the
engine, a strategy's entry filled on paper at the streamed ask and stored, alerts and /status saying
"PAPER", and a feed outage longer than ``trading.feed_down_s`` pausing entries while the stream recovers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.notify.formats import Style, from_payload
from core.app.errors import StartupError
from core.app.trading_core import TradingCore
from core.ops.outbox import OutboxWriter
from core.settings.config import Settings, load_settings
from core.trading.events import EventBus
from core.trading.state import PAUSED
from exchanges.base import Candle
from exchanges.paper import PaperExchange
from persistence.db import Database
from persistence.models import OrderRow, OutboxRow, PaperFillRow, PositionRow
from tests.core.waiting import eventually
from tests.exchanges.fakes import FakeKraken, MarketController

ALWAYS_BUY = textwrap.dedent(
    """
    from strategies.base import Candles, Direction, Signal

    NAME = "always_buy"
    PARAMS = {}

    def evaluate(candles: Candles, params: dict) -> Signal:
        return Signal(candles.pair, Direction.BUY, 0.9, "always", NAME)
    """
)
PRICE = Decimal(20000)


def settings_for(fake: FakeKraken, tmp_path: Path, **trading: Any) -> Settings:
    module = tmp_path / "always_buy.py"
    module.write_text(ALWAYS_BUY)
    sha = hashlib.sha256(ALWAYS_BUY.encode()).hexdigest()
    return load_settings(env={}, dotenv_path=None, overrides={
        "trading": {"feed": "kraken", "pairs": ["BTC/USD"], "timeframe": "1m", "protection_interval_s": 0.05,
                    **trading},
        "kraken": {"rest_url": fake.rest_url, "ws_url": fake.ws_url},
        "paper": {"impact_bps": 0},  # fills at the ask plus the 5 bps slippage, whatever the size
        "strategies": {"enabled": [], "external": [{"name": "always_buy", "path": str(module), "sha256": sha}]},
        "notify": {"destinations": [{"name": "ops", "platform": "discord", "target": "381870553235193857"}]},
    })


@dataclass
class Running:
    core: TradingCore
    fake: FakeKraken
    market: MarketController
    minute: datetime
    failures: list[BaseException]


@asynccontextmanager
async def paper_on_kraken(db: Database, tmp_path: Path, bars: int = 60, **trading: Any) -> AsyncIterator[Running]:
    """The fake Kraken with ``bars`` 1m candles of history, the last one two minutes ago (Kraken's REST
    counts it as still running: the stream's snapshot closes it), a quote, and the trading core."""
    fake = FakeKraken()
    async with fake:
        market = MarketController(fake)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        for k in range(bars + 1, 1, -1):
            p = PRICE + k
            market.add_candle("BTC/USD", 60, minute - timedelta(minutes=k), p, p + 5, p - 5, p, Decimal(3))
        await market.set_price("BTC/USD", PRICE, Decimal(10))  # bid 19995, ask 20005
        s = settings_for(fake, tmp_path, **trading)
        failures: list[BaseException] = []
        events = EventBus(outbox=OutboxWriter(s.notify, label=s.trading.paper_label))
        core = TradingCore(s, db, events, instance_id="test", leader=lambda: "test", on_failure=failures.append)
        await core.start()
        try:
            yield Running(core, fake, market, minute, failures)
        finally:
            await core.stop()
        # the term's end closes the public stream at once, not when its generator is collected
        await eventually(lambda: not fake.sockets["public"], 5, "the public WebSocket closed")


async def _stream_next_candle(r: Running, minutes_ago: int = 1, close: Decimal = PRICE) -> None:
    await r.market.push_candle("BTC/USD", 60, r.minute - timedelta(minutes=minutes_ago), close, close + 5, close - 5,
                               close, Decimal(3))


async def test_paper_on_the_live_kraken_feed_warms_up_scans_live_candles_and_fills_on_paper(
        sqlite_db: Database, tmp_path: Path) -> None:
    async with paper_on_kraken(sqlite_db, tmp_path) as r:
        engine, venue = r.core.engine, r.core.exchange
        assert engine is not None and isinstance(venue, PaperExchange)
        # back-filled from REST before anything was scanned (Kraken's last OHLC row counts as running)
        assert engine.md.bars("BTC/USD") == 59 and engine.counters["scans"] == 0
        assert engine.trading.stale_data_s == 2 * 60 + 60  # freshness watched as in live mode
        assert r.fake.tokens == set() and r.fake.last_nonce == 0  # no private call, no key
        await engine.recovery.prepared.wait()
        await eventually(lambda: venue._book.quotes.get("BTC/USD") == (Decimal(19995), Decimal(20005)), 10,
                         "the streamed quote")
        await _stream_next_candle(r)  # candles the live stream closes are scanned: the strategy buys

        async def position() -> PositionRow | None:
            async with sqlite_db.read() as s:
                return (await s.exec(select(PositionRow))).first()

        await eventually(lambda: _is_open(position), 15, "the entry filled and the position stored")
        assert engine.counters["scans"] >= 1
        async with sqlite_db.read() as s:
            order = (await s.exec(select(OrderRow))).one()
            fill = (await s.exec(select(PaperFillRow))).one()
        tick = (await venue.markets())["BTC/USD"].price_tick
        assert fill.price == (Decimal(20005) * Decimal("1.0005") / tick).to_integral_value(ROUND_CEILING) * tick
        assert order.pair == "BTC/USD" and order.side == "buy" and fill.client_order_id == order.client_order_id

        status = await engine.status()
        assert status.paper_label == "PAPER · live Kraken prices" and status.venue == "paper"
        async with sqlite_db.read() as s:
            rows = (await s.exec(select(OutboxRow))).all()
        alerts = [from_payload(json.loads(row.payload), Style()) for row in rows]
        assert alerts and all(a.title.startswith("PAPER · live Kraken prices · ") for a in alerts)
        assert {"order_filled", "position_opened"} <= {a.kind for a in alerts}
        assert r.failures == []


async def _is_open(position: Any) -> bool:
    p = await position()
    return p is not None and p.status == "open"


async def test_a_feed_outage_longer_than_feed_down_s_pauses_entries_and_the_stream_recovers(
        sqlite_db: Database, tmp_path: Path) -> None:
    async with paper_on_kraken(sqlite_db, tmp_path, feed_down_s=0.3) as r:
        engine, fake = r.core.engine, r.fake
        assert engine is not None
        await engine.recovery.prepared.wait()
        await eventually(lambda: fake.ws_connections["public"] >= 1, 10, "subscribed")
        seen: list[Candle] = []
        venue = r.core.exchange
        assert isinstance(venue, PaperExchange)
        # while the connection keeps dropping (over a second: the first reconnect waits about one), a
        # candle closes that only the REST gap fill can bring
        p = PRICE
        r.market.add_candle("BTC/USD", 60, r.minute - timedelta(minutes=1), p, p + 5, p - 5, p, Decimal(3))
        end = asyncio.get_running_loop().time() + 1.5
        while asyncio.get_running_loop().time() < end:
            await fake.drop_websockets("public")
            await asyncio.sleep(0.05)
        await eventually(lambda: engine.state.state == PAUSED, 10, "entries auto-paused")
        assert "market data feed disconnected" in engine.state.reason
        connections = fake.ws_connections["public"]
        await eventually(lambda: fake.ws_connections["public"] > connections, 10, "reconnected")
        # the candle that closed while away arrives through the gap fill; live candles continue after it
        await eventually(lambda: engine.md.bars("BTC/USD") == 61, 10, "the gap filled from REST")
        seen.extend((await venue.candles("BTC/USD", 60))[-1:])
        assert seen[0].ts == r.minute - timedelta(minutes=1)
        await r.market.push_candle("BTC/USD", 60, r.minute, p, p + 5, p - 5, p, Decimal(3))
        await r.market.push_candle("BTC/USD", 60, r.minute + timedelta(minutes=1), p, p, p, p, Decimal(1))
        await eventually(lambda: engine.md.bars("BTC/USD") == 62, 10, "live candles after the reconnect")
        assert engine.state.state == PAUSED  # an operator resumes; the feed coming back does not


async def test_a_pair_the_feed_does_not_list_refuses_the_start_naming_the_setting(
        sqlite_db: Database, tmp_path: Path) -> None:
    fake = FakeKraken()
    async with fake:
        s = settings_for(fake, tmp_path, pairs=["BTC/USD", "NOPE/USD"])
        core = TradingCore(s, sqlite_db, EventBus(), instance_id="t", leader=lambda: "t", on_failure=lambda e: None)
        with pytest.raises(StartupError, match=r"trading\.pairs: NOPE/USD not listed by kraken"):
            await core.start()
        assert core.engine is None and core.exchange is None
