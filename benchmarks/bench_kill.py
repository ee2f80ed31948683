"""Kill with 50 open positions and 50 resting orders on the paper venue at 100 ms latency per call.

Prints the time from submitting the Kill intent to every cancel and close being acknowledged by
the venue (goal <= 500 ms; 100 sequential calls would take 10 s), and to the kill returning with
the venue confirmed flat and the report stored. Runs on SQLite by default, or on the
PostgreSQL given by --pg URL.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.trading.executor import OrderSpec
from core.trading.intents import Kill
from exchanges.base import OrderType, Side
from persistence.db import Database
from persistence.migrate import upgrade
from tests.core.engine_rig import Rig, ScriptedStrategy

PAIRS = tuple(f"C{i:02d}/USD" for i in range(50))


async def one_run(url: str, schema: str | None = None) -> tuple[float, int, bool]:
    db = Database(url, schema=schema)
    await db.start()
    await upgrade(db)
    rig = Rig(db, ScriptedStrategy({2: "buy"}), pairs=PAIRS, latency_ms=0)
    rig.settings = rig.settings.model_copy(update={"risk": rig.settings.risk.model_copy(update={
        "max_open_positions": 100, "max_pair_exposure": Decimal("0.01"), "risk_per_trade": Decimal("0.001")})})
    await rig.start()
    await rig.paper.set_balance("USD", Decimal(1_000_000))
    for pair in PAIRS:
        await rig.candle("100", pair=pair)
    for pair in PAIRS:
        await rig.candle("100", pair=pair)  # scripted buy on the second bar: 50 positions
    for pair in PAIRS:
        await rig.engine.executor.place(OrderSpec(pair=pair, side=Side.BUY, qty=Decimal("0.1"), purpose="entry",
                                                  position_id=None, order_type=OrderType.LIMIT,
                                                  limit_price=Decimal(50)))
    await rig.engine.executor.poll_fills()
    open_pos = len(await rig.engine.positions())
    open_orders = len(await rig.engine.executor.open_orders())
    assert open_pos == 50 and open_orders == 50, (open_pos, open_orders)
    rig.paper._latency_s = 0.1  # from here on every venue call takes 100 ms
    t0 = time.perf_counter()
    result = await rig.engine.submit(Kill(requested_by="bench"))
    elapsed = time.perf_counter() - t0
    ack = rig.engine.kill_switch.acknowledged_s
    left = len(await rig.engine.positions()) + len(await rig.engine.executor.open_orders())
    await rig.stop()
    await db.stop()
    return ack if ack is not None else float("inf"), elapsed, left, result.ok


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pg", default=None, help="PostgreSQL URL (a fresh schema per run)")
    args = ap.parse_args()
    acks, totals = [], []
    for i in range(args.runs):
        if args.pg:
            import asyncpg

            schema = f"bench_kill_{i}_{int(time.time())}"
            conn = await asyncpg.connect(args.pg)
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.close()
            ack, elapsed, left, ok = await one_run(args.pg, schema)
            conn = await asyncpg.connect(args.pg)
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            await conn.close()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                ack, elapsed, left, ok = await one_run(f"sqlite:///{tmp}/kill.db")
        acks.append(ack)
        totals.append(elapsed)
        print(f"run {i + 1}: every cancel and close acknowledged after {ack * 1000:.0f} ms; kill returned "
              f"(flat verified, report stored) after {elapsed * 1000:.0f} ms, complete={ok}, left open={left}")
    db_name = "postgresql" if args.pg else "sqlite"
    print(f"kill, 50 positions + 50 orders, 100 ms latency per call ({db_name}): acknowledged median "
          f"{statistics.median(acks) * 1000:.0f} ms, max {max(acks) * 1000:.0f} ms (goal <= 500 ms); "
          f"flat verified median {statistics.median(totals) * 1000:.0f} ms, max {max(totals) * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
