"""Engine figures: replay throughput through the full path, and the service's peak RSS.

    python benchmarks/bench_engine.py --bars 3000            # bars/s through Engine.on_candle
    python benchmarks/bench_engine.py --rss --seconds 300     # peak RSS of `tradectl run` (embedded default)

The throughput run drives the real engine (market data, paper venue matching, fills, stops,
strategy scan with all built-ins, equity snapshot and cursor write per bar) over the bundled
BTC/USD hourly candles on a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def throughput(bars: int) -> None:
    from core.settings.config import load_settings
    from core.trading.assembly import build_engine
    from core.trading.events import EventBus
    from exchanges.clock import SimClock
    from exchanges.paper import MarketRules, PaperExchange
    from exchanges.replay import load_bundled
    from persistence.db import Database
    from persistence.migrate import upgrade

    candles = load_bundled().candles[:bars]
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        await db.start()
        await upgrade(db)
        settings = load_settings(env={}, dotenv_path=None)
        clock = SimClock(candles[0].ts)
        paper = PaperExchange(db, {"BTC/USD": MarketRules()}, starting_balances={"USD": 10000}, clock=clock)
        await paper.start()

        async def idle():  # type: ignore[no-untyped-def]
            await asyncio.Event().wait()
            yield None

        engine = build_engine(settings, db, paper, idle(), clock, EventBus(), market_hooks=(paper.on_market_event,))
        await engine.start()
        t0 = time.perf_counter()
        for c in candles:
            clock.advance_to(c.ts + (candles[1].ts - candles[0].ts))
            await engine.on_candle(c)
        elapsed = time.perf_counter() - t0
        trades = (await engine.pnl("all")).trades
        await engine.stop()
        await db.stop()
    print(f"engine replay, full path, 1 pair, SQLite: {len(candles)} bars in {elapsed:.2f}s = "
          f"{len(candles) / elapsed:,.0f} bars/s ({trades} closed trades)")


def rss(seconds: float) -> None:
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_")}
        env.update({"TRADECTL_CHAT__CONSOLE": "off", "PYTHONPATH": str(ROOT)})
        proc = subprocess.Popen([sys.executable, "-m", "core.app.cli", "run"], cwd=tmp, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ps = psutil.Process(proc.pid)
        peak = 0
        end = time.monotonic() + seconds
        samples = []
        try:
            while time.monotonic() < end and proc.poll() is None:
                mem = ps.memory_info().rss
                peak = max(peak, mem)
                samples.append(mem)
                time.sleep(1)
        finally:
            proc.terminate()
            code = proc.wait(30)
    print(f"tradectl run (embedded default) for {seconds:.0f}s: peak RSS {peak / 2**20:.1f} MiB, "
          f"last {samples[-1] / 2**20:.1f} MiB (goal <= 150 MB); exit code after SIGTERM {code}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=3000)
    ap.add_argument("--rss", action="store_true")
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    if a.rss:
        rss(a.seconds)
    else:
        asyncio.run(throughput(a.bars))
