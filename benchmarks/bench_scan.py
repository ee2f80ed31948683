"""Time a full strategy scan: 50 pairs x every built-in strategy + confluence, 500-candle windows.

Windows are real candle slices (Coinbase BTC/USD hourly, Bitstamp ETH/USD daily, Bittrex ETC/BTC
one-minute), each scanned with a 4-hour higher-timeframe window for the confluence check. Prints the
median and 95th percentile of the whole-scan time over the runs. Goal: <= 50 ms per scan.

Run from the project root: ``.venv/bin/python benchmarks/bench_scan.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from strategies.base import Candles  # noqa: E402
from strategies.builtins import BUILTIN_NAMES  # noqa: E402
from strategies.registry import load_strategies  # noqa: E402

DATA = ROOT / "tests" / "data"
SOURCES = (
    ("coinbase_BTC-USD_1h.csv", 3600),
    ("bitstamp_ETH-USD_1d.csv", 86400),
    ("bittrex_ETC-BTC_1m.csv", 60),
)
GOAL_MS = 50.0


def load(name: str, timeframe_s: int) -> Candles:
    path = ROOT / "exchanges" / "data" / name if name.startswith("coinbase") else DATA / name
    raw = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=None, encoding="ascii",
                        names=("timestamp", "open", "high", "low", "close", "volume"))
    ts = np.array([int(datetime.fromisoformat(str(t).replace("Z", "+00:00")).timestamp())
                   for t in raw["timestamp"]], dtype=np.int64)
    cols = {k: np.ascontiguousarray(raw[k], dtype=np.float64) for k in ("open", "high", "low", "close", "volume")}
    return Candles(pair=name.split("_")[1], timeframe_s=timeframe_s, ts=ts, **cols)


def slice_of(c: Candles, start: int, length: int, pair: str) -> Candles:
    s = slice(start, start + length)
    return Candles(pair=pair, timeframe_s=c.timeframe_s, ts=c.ts[s].copy(), open=c.open[s].copy(),
                   high=c.high[s].copy(), low=c.low[s].copy(), close=c.close[s].copy(),
                   volume=c.volume[s].copy())


def four_hourly(c: Candles) -> Candles:
    n = len(c) // 4 * 4
    return Candles(pair=c.pair, timeframe_s=c.timeframe_s * 4, ts=c.ts[:n:4].copy(), open=c.open[:n:4].copy(),
                   high=c.high[:n].reshape(-1, 4).max(1), low=c.low[:n].reshape(-1, 4).min(1),
                   close=c.close[3:n:4].copy(), volume=c.volume[:n].reshape(-1, 4).sum(1))


def windows(pairs: int, length: int) -> list[tuple[Candles, Candles]]:
    series = [load(name, tf) for name, tf in SOURCES]
    rng = np.random.default_rng(1)
    out = []
    for k in range(pairs):
        src = series[k % len(series)]
        start = int(rng.integers(0, len(src) - length))
        w = slice_of(src, start, length, f"P{k:02d}/{src.pair}")
        out.append((w, four_hourly(w)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--candles", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    scanner = load_strategies({"enabled": list(BUILTIN_NAMES), "higher_timeframe": "4h",
                               "higher_timeframe_ema": 50})
    work = windows(args.pairs, args.candles)
    for w, htf in work:  # warm caches and imports
        scanner.scan(w, htf)

    times = []
    directions: dict[str, int] = {}
    for _ in range(args.runs):
        started = time.perf_counter()
        results = [scanner.scan(w, htf) for w, htf in work]
        times.append(time.perf_counter() - started)
    for r in results:
        directions[r.signal.direction.value] = directions.get(r.signal.direction.value, 0) + 1

    ms = sorted(t * 1e3 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    median = statistics.median(ms)
    members = len(scanner.names)
    print(f"scan of {args.pairs} pairs x {members} strategies + confluence, {args.candles}-candle windows, "
          f"{args.runs} runs")
    print(f"  median {median:.2f} ms   p95 {p95:.2f} ms   min {ms[0]:.2f} ms   max {ms[-1]:.2f} ms")
    print(f"  per strategy call {median * 1e3 / (args.pairs * members):.1f} us (median scan / calls)")
    print(f"  last scan's combined signals: {directions}")
    stats = scanner.stats()
    print("  per strategy mean call time: " + ", ".join(
        f"{name} {s.total_s / s.calls * 1e6:.0f} us" for name, s in stats.items()))
    verdict = "OK" if p95 <= GOAL_MS else "OVER GOAL"
    print(f"  goal <= {GOAL_MS:.0f} ms per scan (p95): {verdict}")


if __name__ == "__main__":
    main()
