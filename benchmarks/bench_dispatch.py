"""Dispatch-to-reply time for /status with 50 open positions and 10,000 closed trades in PostgreSQL.

Goal: p50 <= 5 ms, p99 <= 25 ms, platform network time excluded. Measured: from
``Dispatcher.handle_text`` being called to the ``Reply`` being returned, through the whole
middleware (processed-update insert, role lookup for a user granted from chat, rate limit, audit
row) and the trading service's /status queries.

The trading service comes from a factory so the same benchmark measures any implementation:

    python benchmarks/bench_dispatch.py                       # the engine's own queries, on PostgreSQL
    python benchmarks/bench_dispatch.py --factory bench_dispatch:DbStatusService  # uncached reads, for comparison
    python benchmarks/bench_dispatch.py --factory pkg.mod:fn  # fn(db, pairs) -> TradingService
    python benchmarks/bench_dispatch.py --db sqlite           # the embedded default, for comparison

PostgreSQL comes from ``--url`` or ``TRADECTL_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the benchmark works in a schema of its own and drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert
from sqlmodel import col, select

from bot.app import build_dispatcher
from bot.identity import Actor, ChatRef, Role
from bot.platforms.console import render_console
from core.settings.settings_models import ChatSettings
from core.trading.intents import Intent, IntentResult
from core.trading.views import (
    BalanceView,
    HealthView,
    PairPerformance,
    PeriodPnl,
    PnlSummary,
    PositionView,
    StatusView,
    TradeView,
)
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import EquitySnapshot, PositionRow, TradingStateRow

OPEN, CLOSED = 50, 10_000
ZERO = Decimal(0)
CENTS = Decimal("0.01")


class DbStatusService:
    """A read-only TradingService answering /status from the real tables, the way the engine's queries do:
    open positions, today's realized PnL from closed positions, the latest equity snapshot and the
    trading state — one transaction. Marks are a fixed +1% (no market data in a benchmark).

    The comparison: ``--factory bench_dispatch:DbStatusService`` (every call reads the tables).
    """

    def __init__(self, db: Database, pairs: tuple[str, ...]) -> None:
        self.db = db
        self._pairs = pairs

    @property
    def pairs(self) -> tuple[str, ...]:
        return self._pairs

    async def submit(self, intent: Intent) -> IntentResult:
        return IntentResult(False, "read-only benchmark service")

    async def status(self) -> StatusView:
        now = datetime.now(UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        p = PositionRow
        async with self.db.engine.begin() as conn:  # plain Core selects: no ORM objects on the hot path
            rows = (await conn.execute(select(p.pair, p.qty, p.entry_qty, p.entry_cost, p.stop_price, p.take_profit,
                                              p.opened_at, p.strategy)
                                       .where(p.status == "open").order_by(col(p.id)))).all()
            today = (await conn.execute(select(func.coalesce(func.sum(p.realized_pnl), 0)).where(
                p.status == "closed", col(p.closed_at) >= day))).scalar_one()
            snap = (await conn.execute(select(EquitySnapshot.equity, EquitySnapshot.cash)
                                       .order_by(col(EquitySnapshot.ts).desc()).limit(1))).first()
            state = (await conn.execute(select(TradingStateRow.state, TradingStateRow.reason,
                                               TradingStateRow.changed_by, TradingStateRow.changed_at)
                                        .where(TradingStateRow.group_name == "default"))).first()
        positions = []
        for pair, qty, entry_qty, entry_cost, stop, take_profit, opened_at, strategy in rows:
            entry = entry_cost / entry_qty
            mark = (entry * Decimal("1.01")).quantize(CENTS)
            positions.append(PositionView(pair=pair, qty=qty, entry_price=entry, mark_price=mark,
                                          unrealized_pnl=(qty * (mark - entry)).quantize(CENTS),
                                          unrealized_pct=Decimal("1.00"), stop=stop, take_profit=take_profit,
                                          opened_at=opened_at, strategy=strategy))
        unrealized = sum((v.unrealized_pnl for v in positions), ZERO)
        return StatusView(
            state=state[0] if state else "running", state_reason=state[1] if state else "",
            state_changed_by=state[2] if state else "", state_changed_at=state[3] if state else None,
            mode="paper", venue="paper", quote="USD", equity=snap[0] if snap else ZERO,
            cash=snap[1] if snap else ZERO, positions=tuple(positions),
            today_pnl=(Decimal(today) + unrealized).quantize(CENTS), data_age_s={q: 3.0 for q in self._pairs},
            leader="bench", instance_id="bench", uptime_s=1.0, open_orders=0)

    async def positions(self) -> list[PositionView]:
        return list((await self.status()).positions)

    async def balances(self) -> list[BalanceView]:
        return []

    async def pnl(self, period: Any) -> PnlSummary:
        raise NotImplementedError

    async def periods(self, unit: Any, count: int) -> list[PeriodPnl]:
        return []

    async def trades(self, count: int) -> list[TradeView]:
        return []

    async def performance(self) -> list[PairPerformance]:
        return []

    async def health(self) -> HealthView:
        return HealthView(ok=True, components={})


class CachedStatusService(DbStatusService):
    """The same /status, computed once: measures the command core alone (middleware, audit, formatting)."""

    _cached: StatusView | None = None

    async def status(self) -> StatusView:
        if self._cached is None:
            self._cached = await super().status()
        return self._cached


async def seed(db: Database, pairs: tuple[str, ...]) -> None:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(CLOSED):
        pair = pairs[i % len(pairs)]
        closed_at = now - timedelta(minutes=53 * i)
        pnl = Decimal((i * 37) % 200 - 90).quantize(CENTS)
        rows.append(dict(pair=pair, status="closed", qty=ZERO, entry_qty=Decimal("0.1"), entry_cost=Decimal("3000"),
                         entry_fees=Decimal("1.2"), exit_qty=Decimal("0.1"), exit_value=Decimal("3000") + pnl,
                         exit_fees=Decimal("1.2"), realized_pnl=pnl, strategy="trend", exit_reason="signal",
                         opened_at=closed_at - timedelta(hours=5), closed_at=closed_at))
    for i in range(OPEN):
        rows.append(dict(pair=pairs[i % len(pairs)], status="open", qty=Decimal("0.25"), entry_qty=Decimal("0.25"),
                         entry_cost=Decimal("7500"), entry_fees=Decimal("3"), stop_price=Decimal("29000"),
                         strategy="trend", opened_at=now - timedelta(hours=i)))
    snaps = [dict(ts=now - timedelta(hours=i), equity=Decimal("100000") + i, cash=Decimal("50000"),
                  positions_value=Decimal("50000") + i) for i in range(CLOSED)]
    async with db.session() as s:
        for start in range(0, len(rows), 2000):
            await s.exec(insert(PositionRow), params=rows[start:start + 2000])  # type: ignore[call-overload]
        for start in range(0, len(snaps), 2000):
            await s.exec(insert(EquitySnapshot), params=snaps[start:start + 2000])  # type: ignore[call-overload]
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE positions")
            await conn.exec_driver_sql("ANALYZE equity_snapshots")


def load_factory(spec: str | None) -> Callable[[Database, tuple[str, ...]], Any]:
    if not spec:
        from benchmarks.engine_service import make

        return make
    if spec == "bench_dispatch:DbStatusService":
        return DbStatusService
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


async def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    await fn()
    return (time.perf_counter() - t0) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> int:
    schema = None
    if args.db == "postgres":
        import asyncpg

        url = args.url or os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        schema = "bench_" + secrets.token_hex(4)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.close()
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    db = Database(url, schema=schema)
    await db.start()
    try:
        await upgrade(db)
        pairs = tuple(f"C{i:02d}/USD" for i in range(OPEN))
        await seed(db, pairs)
        service = load_factory(args.factory)(db, pairs)
        settings = ChatSettings(rate_limit_per_minute=1_000_000, allowed_chats={"telegram": ("-100",)})
        actor, chat = Actor("telegram", "424242"), ChatRef("telegram", "-100", "group")
        print(f"/status on {db.dialect}: {OPEN} open positions, {CLOSED} closed trades, {args.n} runs after "
              f"{args.warmup} warm-up; user granted from chat, one update id per message")
        results = {}
        for label, svc in (("dispatch-to-reply", service),
                           ("  command core alone (status cached)", CachedStatusService(db, pairs))):
            dispatcher = build_dispatcher(db, svc, settings)
            await dispatcher.access.grant("telegram", "424242", Role.VIEWER, Actor("console", "local"))
            total, render = [], []
            for i in range(args.warmup + args.n):
                t0 = time.perf_counter()
                reply = await dispatcher.handle_text(actor, chat, "/status", datetime.now(UTC), f"{label[:2]}{i}")
                t1 = time.perf_counter()
                text = render_console(reply) if reply is not None else ""
                t2 = time.perf_counter()
                if i >= args.warmup:
                    total.append((t1 - t0) * 1000)
                    render.append((t2 - t1) * 1000)
            assert reply is not None and f"open positions  {OPEN}" in text, text[:400]
            results[label] = total
            if label == "dispatch-to-reply":
                results["  of which the service's status()"] = [await timed(service.status) for _ in range(args.n)]
                results["console rendering (adapter side)"] = render
        print(f"  (service: {type(service).__name__})")
        for label, values in results.items():
            print(f"  {label:<38} p50 {statistics.median(values):6.2f} ms   p90 {pct(values, 0.90):6.2f} ms   "
                  f"p99 {pct(values, 0.99):6.2f} ms   max {max(values):6.2f} ms")
        p50, p99 = statistics.median(results["dispatch-to-reply"]), pct(results["dispatch-to-reply"], 0.99)
        print(f"  goal p50 <= 5 ms, p99 <= 25 ms: {'met' if p50 <= 5 and p99 <= 25 else 'NOT met'}"
              f" (load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
        return 0
    finally:
        await db.stop()
        if schema:
            import asyncpg

            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--url", help="PostgreSQL URL (default: TRADECTL_TEST_PG_URL)")
    parser.add_argument("--factory", help="module:callable(db, pairs) returning the TradingService to measure "
                        "(default: the engine; bench_dispatch:DbStatusService reads the tables on every call)")
    parser.add_argument("-n", type=int, default=2000, help="measured runs")
    parser.add_argument("--warmup", type=int, default=200)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
