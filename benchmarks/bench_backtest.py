"""Backtest throughput: fast mode vs backtesting.py vs engine mode, single-pair SMA crossover.

Prints bars per second for:

- fast mode on 1,000,000 synthetic hourly candles (seeded random walk), with and without building
  the exact ``Decimal`` trade list;
- fast mode and backtesting.py on the bundled real candles, and whether their trades are identical
  (entry and exit candle, size, entry and exit price);
- backtesting.py on 200,000 synthetic candles;
- engine mode (the real engine, a database write per candle) on a few thousand real candles;
- peak memory (resident set size) after each stage, and the traced peak of one 1M-candle fast run.

Goals: fast mode >= 1,000,000 bars/s and >= 10x backtesting.py. The strategy is sma_cross 10/30,
one whole unit per trade, 0.1% commission, no slippage. The bundled file's 28 zero-volume filler
hours are left out of the real-data comparison: the paper venue fills nothing in a candle without
trades, backtesting.py fills every order at the next open (docs/backtesting.md).

Run from the project root: ``.venv/bin/python benchmarks/bench_backtest.py`` (``--engine-bars 0``
skips the slow engine stage).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import tracemalloc
import warnings
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.backtest.data import Bars, load_bars, synthetic, to_arrays  # noqa: E402
from core.backtest.fast import run_fast  # noqa: E402
from core.backtest.model import RunSpec  # noqa: E402
from core.backtest.runner import run_engine  # noqa: E402
from core.backtest.stats import compute  # noqa: E402
from core.config import Settings  # noqa: E402

FAST, SLOW = 10, 30
SPEC = RunSpec(sizing="fixed", qty=Decimal(1))
SETTINGS = Settings.model_validate({
    "strategies": {"enabled": ["sma_cross"], "params": {"sma_cross": {"fast": FAST, "slow": SLOW}}},
    "paper": {"slippage_bps": "0", "impact_bps": "0", "taker_fee": "0.001", "maker_fee": "0.001", "volume_share": "1",
              "starting_balances": {"USD": "1000000"}},
    "risk": {"cooldown_after_loss_s": 0, "daily_loss_limit": "1", "max_drawdown": "1"},
})


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def best_of(runs: int, fn):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def fast_run(bars: Bars, build_trades: bool):  # type: ignore[no-untyped-def]
    result = run_fast(SETTINGS, bars, SPEC)
    compute(result, float(bars.arrays.close[0]), float(bars.arrays.close[-1]))
    if build_trades:
        _ = result.trades
    return result


def reference(bars: Bars, runs: int):  # type: ignore[no-untyped-def]
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(values, n):  # type: ignore[no-untyped-def]
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.f = self.I(sma, self.data.Close, FAST)
            self.s = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.f, self.s):
                if not self.position:
                    self.buy(size=1)
            elif crossover(self.s, self.f):
                self.position.close()

    a = bars.arrays
    frame = pd.DataFrame({"Open": a.open, "High": a.high, "Low": a.low, "Close": a.close, "Volume": a.volume},
                         index=pd.to_datetime(a.ts, unit="s", utc=True))

    def run():  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Backtest(frame, SmaCross, cash=1_000_000, commission=0.001, exclusive_orders=True,
                            trade_on_close=False, finalize_trades=True).run()

    return best_of(runs, run)


def line(label: str, bars: int, seconds: float, extra: str = "") -> None:
    print(f"  {label:<44} {bars:>9,} bars {seconds:>8.3f} s {bars / seconds:>13,.0f} bars/s  {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--reference-bars", type=int, default=200_000, help="synthetic candles for backtesting.py")
    parser.add_argument("--engine-bars", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    print(f"sma_cross {FAST}/{SLOW}, 1 unit per trade, 0.1% commission, no slippage; best of {args.runs} runs\n")
    big = synthetic(args.bars, seed=1)
    full = load_bars("BTC/USD", 3600)
    assert full.candles is not None
    candles = tuple(c for c in full.candles if c.volume > 0)
    real = Bars(arrays=to_arrays("BTC/USD", 3600, candles), candles=candles)

    print("fast mode")
    t_big, r_big = best_of(args.runs, lambda: fast_run(big, False))
    line(f"synthetic, stats only ({len(r_big.table)} trades)", args.bars, t_big)
    t_big_tr, _ = best_of(args.runs, lambda: fast_run(big, True))
    line("synthetic, stats + exact Decimal trade list", args.bars, t_big_tr)
    t_real, r_real = best_of(args.runs, lambda: fast_run(real, True))
    line(f"bundled real candles ({len(r_real.trades)} trades)", len(real), t_real)
    fast_rss = rss_mb()
    tracemalloc.start()
    fast_run(big, True)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    print("backtesting.py")
    t_ref_real, stats = reference(real, max(1, args.runs // 2))
    line("bundled real candles", len(real), t_ref_real)
    ref = [(int(r.EntryBar), int(r.ExitBar), Decimal(int(r.Size)), Decimal(repr(float(r.EntryPrice))),
            Decimal(repr(float(r.ExitPrice)))) for r in stats._trades.itertuples()]
    closed = [t.key() for t in r_real.trades if t.closed]
    still_open = [t for t in r_real.trades if not t.closed]
    same = closed == ref[:len(closed)] and all(
        (t.entry_bar, t.qty, t.entry_price) == (r[0], r[2], r[3]) for t, r in zip(still_open, ref[len(closed):]))
    t_ref_syn = 0.0
    if args.reference_bars:
        t_ref_syn, _ = reference(synthetic(args.reference_bars, seed=1), 1)
        line("synthetic", args.reference_bars, t_ref_syn)
    ref_rss = rss_mb()

    t_engine = 0.0
    if args.engine_bars:
        print("engine mode (the trading engine itself, SQLite per run)")
        part = Bars(arrays=to_arrays("BTC/USD", 3600, candles[:args.engine_bars]), candles=candles[:args.engine_bars])
        started = time.perf_counter()
        asyncio.run(run_engine(SETTINGS, part, SPEC))
        t_engine = time.perf_counter() - started
        line("bundled real candles", args.engine_bars, t_engine)

    fast_rate, ref_rate = args.bars / t_big, len(real) / t_ref_real
    print("\nsummary")
    print(f"  identical trades on real data (fast mode vs backtesting.py): {'yes' if same else 'NO'} "
          f"({len(closed)} closed + {len(still_open)} open vs {len(ref)})")
    print(f"  fast mode {fast_rate:,.0f} bars/s on {args.bars:,} synthetic candles: goal >= 1,000,000 "
          f"{'met' if fast_rate >= 1e6 else 'MISSED'}")
    ratio = (len(real) / t_real) / ref_rate
    print(f"  fast mode vs backtesting.py on the same real candles: {ratio:,.1f}x "
          f"(goal >= 10x {'met' if ratio >= 10 else 'MISSED'})")
    if t_ref_syn:
        syn_ratio = fast_rate / (args.reference_bars / t_ref_syn)
        print(f"  fast mode (1M synthetic) vs backtesting.py ({args.reference_bars:,} synthetic): {syn_ratio:,.1f}x")
    if t_engine:
        print(f"  engine mode {args.engine_bars / t_engine:,.0f} bars/s (fast mode is "
              f"{(len(real) / t_real) / (args.engine_bars / t_engine):,.0f}x faster)")
    print(f"  peak RSS: {fast_rss:,.0f} MB after the fast-mode runs, {ref_rss:,.0f} MB after backtesting.py, "
          f"{rss_mb():,.0f} MB at the end; traced peak of one 1M-candle fast run: {traced:,.0f} MB")


if __name__ == "__main__":
    main()
