"""The engine's own TradingService for benchmarks/bench_dispatch.py (its default factory).

A real :class:`~core.trading.engine.Engine` on the paper venue over the benchmark's database; its queries
read the seeded positions and trades exactly as the running service would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from core.settings.config import load_settings
from core.trading.assembly import build_engine
from core.trading.engine import Engine
from core.trading.events import EventBus
from exchanges.clock import SystemClock
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database


async def _idle() -> AsyncIterator[Any]:
    import asyncio

    await asyncio.Event().wait()
    yield None  # pragma: no cover


def make(db: Database, pairs: tuple[str, ...]) -> Engine:
    settings = load_settings(env={}, dotenv_path=None, overrides={"trading": {"pairs": list(pairs)}})
    clock = SystemClock()
    paper = PaperExchange(db, {p: MarketRules() for p in pairs}, starting_balances={"USD": 10000}, clock=clock)
    engine = build_engine(settings, db, paper, _idle(), clock, EventBus())
    engine._running = True  # queries only: the feed and protection tasks are not needed here
    return engine
