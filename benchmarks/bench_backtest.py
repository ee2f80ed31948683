"""Backtest throughput: engine mode, fast mode, backtesting.py and vectorbt, single-pair SMA crossover.

Prints bars per second, in one run, for:

- engine mode (the real engine: risk manager, executor, paper venue, accounting, SQLite) on the bundled
  hourly candles, with the default risk sizing and with one unit per trade (whose trades must equal
  fast mode's);
- fast mode on 1,000,000 synthetic hourly candles (seeded random walk): with statistics and the exact
  trade records (every fill's price in ticks and fee in 1e-8 units, from which each ``Decimal`` trade is
  made when read, :mod:`core.backtest.fasttrades`), and again reading every trade as a ``Decimal``
  ``Trade``; and on the bundled real candles;
- backtesting.py (the ``reference`` extra) on the bundled real candles and on 200,000 synthetic ones,
  and whether its trades equal fast mode's;
- vectorbt on the same 1,000,000 synthetic candles with its trade list, and whether its trades equal
  fast mode's. vectorbt is not a project dependency: it is used when importable, else through the
  interpreter named by ``VBT_PYTHON`` (a throw-away venv: ``python3 -m venv /tmp/vbt &&
  /tmp/vbt/bin/pip install vectorbt``, then ``VBT_PYTHON=/tmp/vbt/bin/python``); without either the
  bench says so;
- peak memory (resident set size) after each stage, and the traced peak of one 1M-candle fast run.

Goals: engine mode >= 20,000 bars/s; fast mode >= 1,000,000 bars/s, >= 10x backtesting.py and at
least as fast as vectorbt with the exact trade list (vectorbt's trade records are numpy arrays; fast
mode's are integer arrays read as exact ``Decimal`` trades). The strategy is sma_cross 10/30, 0.1% commission,
no slippage. The bundled file's 28 zero-volume filler hours are left out of the real-data comparison:
the paper venue fills nothing in a candle without trades, backtesting.py fills every order at the next
open (docs/backtesting.md).

Run from the project root: ``.venv/bin/python benchmarks/bench_backtest.py`` (``--engine-bars 0``
skips the engine stage, ``--engine-only`` runs nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars would interleave with the figures
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.backtest.data import Bars, load_bars, synthetic, to_arrays  # noqa: E402
from core.backtest.fast import run_fast  # noqa: E402
from core.backtest.model import RunSpec  # noqa: E402
from core.backtest.runner import run_engine  # noqa: E402
from core.backtest.stats import compute  # noqa: E402
from core.settings.config import Settings  # noqa: E402

FAST, SLOW = 10, 30
SPEC = RunSpec(sizing="fixed", qty=Decimal(1))
RISK = RunSpec()  # the default: the live risk manager sizes each entry
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


def fast_run(bars: Bars, read_trades: bool):  # type: ignore[no-untyped-def]
    result = run_fast(SETTINGS, bars, SPEC)
    compute(result, float(bars.arrays.close[0]), float(bars.arrays.close[-1]))
    if read_trades:  # every Trade made from the records, as a report or the CSV writer would
        for _ in result.trades:
            pass
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


def vectorbt(bars: Bars, runs: int) -> dict | None:  # type: ignore[type-arg]
    """vectorbt's timing and trades (benchmarks/vbt_sma.py), in this interpreter or ``VBT_PYTHON``."""
    probe = ROOT / "benchmarks" / "vbt_sma.py"
    try:
        import vectorbt  # noqa: F401
        python = sys.executable
    except ImportError:
        python = os.environ.get("VBT_PYTHON", "")
        if not python:
            return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candles.npz"
        np.savez(path, open=bars.arrays.open, close=bars.arrays.close)
        done = subprocess.run([python, str(probe), str(path), str(FAST), str(SLOW), str(runs)],
                              capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"vectorbt failed under {python}: {done.stderr.strip()[-500:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def same_as_vectorbt(trades, theirs) -> bool:  # type: ignore[no-untyped-def]
    """Entry and exit candle, size and prices (vectorbt's floats against our Decimals)."""
    if len(trades) != len(theirs):
        return False
    for t, (entry, exit_, size, entry_price, exit_price) in zip(trades, theirs, strict=True):
        ours_exit = t.exit_bar if t.exit_bar is not None else -1
        if (t.entry_bar, ours_exit) != (entry, exit_) or float(t.qty) != size \
                or not math.isclose(float(t.entry_price), entry_price, rel_tol=1e-12):
            return False
        if t.exit_bar is not None and not math.isclose(float(t.exit_price), exit_price, rel_tol=1e-12):
            return False
    return True


def line(label: str, bars: int, seconds: float, extra: str = "") -> None:
    print(f"  {label:<44} {bars:>9,} bars {seconds:>8.3f} s {bars / seconds:>13,.0f} bars/s  {extra}")


def engine_stage(candles: tuple, engine_bars: int) -> tuple[float, float, bool]:  # type: ignore[type-arg]
    """Engine mode on the first ``engine_bars`` real candles, risk sizing then 1 unit (wall seconds
    of each), and whether the 1-unit trades equal fast mode's."""
    print("engine mode (the trading engine itself: risk manager, executor, paper venue, accounting, SQLite)")
    n = min(engine_bars, len(candles))
    part = Bars(arrays=to_arrays("BTC/USD", 3600, candles[:n]), candles=candles[:n])
    started = time.perf_counter()
    risk_run = asyncio.run(run_engine(SETTINGS, part, RISK))
    t_engine = time.perf_counter() - started
    line(f"bundled real candles, risk sizing ({len(risk_run.trades)} trades)", n, t_engine)
    started = time.perf_counter()
    unit_run = asyncio.run(run_engine(SETTINGS, part, SPEC))
    t_engine_unit = time.perf_counter() - started
    line(f"bundled real candles, 1 unit ({len(unit_run.trades)} trades)", n, t_engine_unit)
    same = [t.key() for t in unit_run.trades] == [t.key() for t in fast_run(part, True).trades]
    print(f"  identical trades (engine mode vs fast mode, 1 unit, real data): {'yes' if same else 'NO'}")
    # the candle path alone: entries paused (the engine's warm-up) on all but the last 100 candles
    quiet = replace(RISK, warmup=max(0, n - 100))
    started, cpu = time.perf_counter(), time.process_time()
    quiet_run = asyncio.run(run_engine(SETTINGS, part, quiet))
    t_quiet, cpu_quiet = time.perf_counter() - started, time.process_time() - cpu
    line(f"entries paused but the last 100 candles ({len(quiet_run.trades)} trades)", n, t_quiet,
         f"({n / cpu_quiet:,.0f} per CPU second)")
    return t_engine, t_engine_unit, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--reference-bars", type=int, default=200_000, help="synthetic candles for backtesting.py")
    parser.add_argument("--engine-bars", type=int, default=100_000, help="engine-mode candles (at most the file's)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engine-only", action="store_true", help="only the engine-mode stage (no fast mode, "
                        "backtesting.py or vectorbt)")
    args = parser.parse_args()
    if args.engine_only:
        full = load_bars("BTC/USD", 3600)
        assert full.candles is not None
        real_candles = tuple(c for c in full.candles if c.volume > 0)
        n = min(args.engine_bars, len(real_candles))
        t_risk, t_unit, _ = engine_stage(real_candles, args.engine_bars)
        print(f"  engine mode {n / t_risk:,.0f} bars/s with risk sizing (goal >= 20,000 "
              f"{'met' if n / t_risk >= 2e4 else 'MISSED'}), {n / t_unit:,.0f} bars/s with 1 unit")
        return

    print(f"sma_cross {FAST}/{SLOW}, 1 unit per trade, 0.1% commission, no slippage; best of {args.runs} runs\n")
    big = synthetic(args.bars, seed=1)
    full = load_bars("BTC/USD", 3600)
    assert full.candles is not None
    candles = tuple(c for c in full.candles if c.volume > 0)
    real = Bars(arrays=to_arrays("BTC/USD", 3600, candles), candles=candles)

    print("fast mode")
    t_big, r_big = best_of(args.runs, lambda: fast_run(big, False))
    line(f"synthetic, stats + exact trade records ({len(r_big.table)} trades)", args.bars, t_big)
    t_big_tr, _ = best_of(args.runs, lambda: fast_run(big, True))
    line("synthetic, stats + every trade read as Decimal", args.bars, t_big_tr)
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
        (t.entry_bar, t.qty, t.entry_price) == (r[0], r[2], r[3])
        for t, r in zip(still_open, ref[len(closed):], strict=False))
    t_ref_syn = 0.0
    if args.reference_bars:
        t_ref_syn, _ = reference(synthetic(args.reference_bars, seed=1), 1)
        line("synthetic", args.reference_bars, t_ref_syn)
    ref_rss = rss_mb()

    t_engine = t_engine_unit = 0.0
    engine_same = False
    if args.engine_bars:
        t_engine, t_engine_unit, engine_same = engine_stage(candles, args.engine_bars)
    engine_rss = rss_mb()

    vbt = vectorbt(big, args.runs)
    if vbt is not None:
        print(f"vectorbt {vbt['version']}")
        line(f"synthetic, trade list ({len(vbt['trades'])} trades)", args.bars, vbt["best_s"],
             f"(first call, compiling: {vbt['first_s']:.1f} s)")
    vbt_same = vbt is not None and same_as_vectorbt(r_big.trades, vbt["trades"])

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
        n = min(args.engine_bars, len(candles))
        rate = n / t_engine
        goal = "met" if rate >= 2e4 else "MISSED"
        print(f"  engine mode {rate:,.0f} bars/s with risk sizing (goal >= 20,000 {goal}),"
              f" {n / t_engine_unit:,.0f} bars/s with 1 unit; vs backtesting.py {rate / ref_rate:.2f}x; "
              f"fast mode is {(len(real) / t_real) / rate:,.0f}x faster")
        print(f"  identical trades (engine mode vs fast mode, 1 unit, real data): {'yes' if engine_same else 'NO'}")
    if vbt is None:
        print("  vectorbt: not measured (not importable here and VBT_PYTHON not set; see the module docstring)")
    else:
        vbt_rate = args.bars / vbt["best_s"]
        read_all = args.bars / t_big_tr
        print(f"  vectorbt {vbt_rate:,.0f} bars/s with its trade records on {args.bars:,} synthetic candles; fast "
              f"mode with the exact trade records {fast_rate:,.0f} bars/s = {fast_rate / vbt_rate:.2f}x vectorbt "
              f"(goal >= 1x {'met' if fast_rate >= vbt_rate else 'MISSED'}); reading every trade as a Decimal "
              f"Trade too {read_all:,.0f} bars/s = {read_all / vbt_rate:.2f}x")
        print(f"  identical trades (fast mode vs vectorbt, synthetic): {'yes' if vbt_same else 'NO'} "
              f"({len(r_big.table)} vs {len(vbt['trades'])})")
    print(f"  peak RSS: {fast_rss:,.0f} MB after the fast-mode runs, {ref_rss:,.0f} MB after backtesting.py, "
          f"{engine_rss:,.0f} MB after engine mode; traced peak of one 1M-candle fast run: {traced:,.0f} MB")


if __name__ == "__main__":
    main()
