"""vectorbt's side of ``bench_backtest.py``: SMA cross on given candles, timed, with its trade list.

Imports nothing from the project, so it runs under any interpreter that has vectorbt (vectorbt is
not one of the project's dependencies; ``bench_backtest.py`` runs this file with ``VBT_PYTHON``):
``python benchmarks/vbt_sma.py CANDLES.npz FAST SLOW RUNS`` prints one JSON object.

Same rules as the project's bench: the cross is judged on a candle's close and filled at the next
candle's open, one unit per trade, 0.1% fee on each side, no slippage, long only.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import numpy as np
    import vectorbt as vbt

    path, fast, slow, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    data = np.load(path)
    close, open_ = data["close"], data["open"]

    def run():  # type: ignore[no-untyped-def]
        f = vbt.MA.run(close, fast).ma.to_numpy()
        s = vbt.MA.run(close, slow).ma.to_numpy()
        above = f > s
        valid = ~(np.isnan(f) | np.isnan(s))
        up = np.zeros(close.size, dtype=bool)
        down = np.zeros(close.size, dtype=bool)
        up[1:] = above[1:] & ~above[:-1] & valid[1:] & valid[:-1]
        down[1:] = ~above[1:] & above[:-1] & valid[1:] & valid[:-1]
        entries = np.zeros(close.size, dtype=bool)
        exits = np.zeros(close.size, dtype=bool)
        entries[1:], exits[1:] = up[:-1], down[:-1]  # judged on a close, filled at the next open
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, size=1.0, fees=0.001,
                                        init_cash=1e12, freq="1h")
        return pf.trades.values  # the exact trade list (a structured array): entry/exit bar, size, prices, fees, pnl

    started = time.perf_counter()
    records = run()  # the first call compiles (numba)
    first = time.perf_counter() - started
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        records = run()
        best = min(best, time.perf_counter() - started)
    keys = [[int(r["entry_idx"]), int(r["exit_idx"]) if int(r["status"]) == 1 else -1, float(r["size"]),
             float(r["entry_price"]), float(r["exit_price"])] for r in records]
    print(json.dumps({"version": vbt.__version__, "bars": int(close.size), "first_s": first, "best_s": best,
                      "trades": keys}))


if __name__ == "__main__":
    main()
