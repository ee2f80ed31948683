"""Real candles for the strategy tests, and small builders for hand-made ones.

The module name is unique in the test tree on purpose: test directories have no ``__init__.py``,
so test helpers are imported by their bare module name.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from strategies.base import Candles

DATA = Path(__file__).resolve().parents[2] / "exchanges" / "data" / "coinbase_BTC-USD_1h.csv"


def load_csv(path: Path, pair: str, timeframe_s: int) -> Candles:
    """The normalized OHLCV CSV (``timestamp,open,high,low,close,volume``) as Candles."""
    raw = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=None, encoding="ascii",
                        names=("timestamp", "open", "high", "low", "close", "volume"))
    ts = np.array(
        [int(datetime.fromisoformat(str(t).replace("Z", "+00:00")).timestamp()) for t in raw["timestamp"]],
        dtype=np.int64,
    )
    cols = {k: np.ascontiguousarray(raw[k], dtype=np.float64) for k in ("open", "high", "low", "close", "volume")}
    return Candles(pair=pair, timeframe_s=timeframe_s, ts=ts, **cols)


def window(c: Candles, start: int, stop: int) -> Candles:
    return Candles(
        pair=c.pair, timeframe_s=c.timeframe_s, ts=c.ts[start:stop], open=c.open[start:stop],
        high=c.high[start:stop], low=c.low[start:stop], close=c.close[start:stop], volume=c.volume[start:stop],
    )


def make_candles(
    opens: npt.ArrayLike, highs: npt.ArrayLike, lows: npt.ArrayLike, closes: npt.ArrayLike,
    pair: str = "TEST/USD", timeframe_s: int = 3600,
) -> Candles:
    n = len(np.asarray(closes))
    return Candles(
        pair=pair, timeframe_s=timeframe_s, ts=np.arange(n, dtype=np.int64) * timeframe_s,
        open=np.asarray(opens, dtype=np.float64), high=np.asarray(highs, dtype=np.float64),
        low=np.asarray(lows, dtype=np.float64), close=np.asarray(closes, dtype=np.float64),
        volume=np.ones(n, dtype=np.float64),
    )


def with_close(c: Candles, index: int, value: float) -> Candles:
    close = c.close.copy()
    close[index] = value
    return Candles(pair=c.pair, timeframe_s=c.timeframe_s, ts=c.ts, open=c.open, high=c.high, low=c.low,
                   close=close, volume=c.volume)
