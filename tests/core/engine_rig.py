"""A real engine on the real paper venue and a real database, driven candle by candle.

The strategy is the one thing tests choose: a function of the candle window (what a user's
strategy module is), so a test can say "buy on this bar" or "block the scan" deterministically.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.settings.config import Settings, load_settings
from core.trading.engine import Engine
from core.trading.errorburst import ErrorBurst
from core.trading.events import Event, EventBus
from core.trading.executor import Executor
from core.trading.market_data import MarketData
from core.trading.risk import RiskManager
from core.trading.state import StateStore
from exchanges.base import Candle
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from strategies.base import Candles, Direction, Signal

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PAIR = "BTC/USD"


class ScriptedStrategy:
    """Signals by bar count: ``{bar_number: "buy" | "sell"}``; optionally blocks while ``gate`` is clear."""

    def __init__(self, script: dict[int, str] | None = None) -> None:
        self.script = dict(script or {})
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, pair: str, window: Candles, higher: Candles | None) -> Signal:
        self.calls += 1
        self.entered.set()
        self.gate.wait(30)
        what = self.script.get(len(window))
        if what == "buy":
            return Signal(pair, Direction.BUY, 1.0, "scripted buy", "scripted", stop=Decimal(90))
        if what == "sell":
            return Signal(pair, Direction.SELL, 1.0, "scripted sell", "scripted")
        return Signal.hold(pair, "scripted")


async def _idle_feed() -> AsyncIterator[Any]:
    await asyncio.Event().wait()
    yield None  # pragma: no cover


def make_candle(n: int, close: str, *, low: str | None = None, high: str | None = None, pair: str = PAIR,
                volume: str = "1000") -> Candle:
    """The ``n``-th hourly candle from :data:`T0` (open = close unless the range says otherwise)."""
    c = Decimal(close)
    lo = Decimal(low) if low else c
    hi = Decimal(high) if high else c
    return Candle(pair, 3600, T0 + timedelta(hours=n), c, max(hi, c), min(lo, c), c, Decimal(volume))


class Rig:
    def __init__(self, db: Database, strategy: ScriptedStrategy | None = None, *, latency_ms: int = 0,
                 settings: Settings | None = None, clock: SimClock | None = None, pairs: tuple[str, ...] = (PAIR,),
                 trading: dict[str, Any] | None = None, volume_share: str = "1",
                 feed: AsyncIterator[Any] | None = None, on_feed_end: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None,
                 rules: dict[str, MarketRules] | None = None) -> None:
        """``rules``: a pair's market rules on the paper venue (the paper defaults for the others)."""
        self.db = db
        self.rules = dict(rules or {})
        self.settings = settings or load_settings(env={}, dotenv_path=None, overrides={
            "trading": {"pairs": list(pairs), **(trading or {})},
            "risk": {"max_open_positions": 60, "max_total_exposure": "1", "max_pair_exposure": "0.5",
                     "cooldown_after_loss_s": 0, "daily_loss_limit": "0.9", "max_drawdown": "0.9"},
        })
        self.volume_share = Decimal(volume_share)
        self.feed = feed
        self.on_feed_end = on_feed_end
        self.on_failure = on_failure
        self.strategy = strategy or ScriptedStrategy()
        self.clock = clock or SimClock(T0)
        self.latency_ms = latency_ms
        self.events = EventBus()
        self.seen: list[Event] = []
        self._q = self.events.subscribe()
        self.bars: dict[str, int] = {}
        self.pairs = pairs

    def build(self) -> Engine:
        s = self.settings
        rules = {p: self.rules.get(p, MarketRules()) for p in self.pairs}
        self.paper = PaperExchange(self.db, rules, starting_balances={"USD": Decimal(10000)},
                                   slippage_bps=Decimal(0), impact_bps=Decimal(0), volume_share=self.volume_share,
                                   latency_ms=self.latency_ms, clock=self.clock, timeframe_s=3600)
        errors = ErrorBurst(s.trading.error_burst, s.trading.error_window_s)  # wired as the assembly does
        self.engine = Engine(db=self.db, exchange=self.paper, feed=self.feed or _idle_feed(),
                             market_data=MarketData(3600),
                             evaluate=self.strategy, risk=RiskManager(s.risk),
                             executor=Executor(self.db, self.paper, self.events, self.clock, backoff_s=0.01,
                                               on_exchange_error=errors.record), errors=errors,
                             state=StateStore(self.db, "default"), clock=self.clock, events=self.events,
                             trading=s.trading, timezone="UTC", mode="paper",
                             market_hooks=(self.paper.on_market_event,), on_feed_end=self.on_feed_end,
                             on_failure=self.on_failure,
                             stale_command_s=s.chat.stale_command_s)
        return self.engine

    async def start(self) -> Engine:
        """Start the engine and wait for the first part of its recovery (the feed may run then)."""
        engine = self.build()
        await self.paper.start()
        await engine.start()
        await asyncio.wait_for(engine.recovery.prepared.wait(), 30)
        return engine

    async def stop(self) -> None:
        await self.engine.stop()
        await self.paper.stop()

    async def candle(self, close: str, *, low: str | None = None, high: str | None = None, pair: str = PAIR,
                     volume: str = "1000") -> None:
        n = self.bars.get(pair, 0)
        self.bars[pair] = n + 1
        c = make_candle(n, close, low=low, high=high, pair=pair, volume=volume)
        self.clock.advance_to(max(self.clock.now(), c.ts + timedelta(hours=1)))
        await self.engine.on_candle(c)

    def drain(self) -> list[Event]:
        while not self._q.empty():
            self.seen.append(self._q.get_nowait())
        return self.seen

    def kinds(self) -> list[str]:
        return [e.kind for e in self.drain()]


