"""Candles for a backtest: loaded, cut to a date range, screened like the engine screens them.

:class:`Bars` carries one pair's candles twice: as float arrays (what strategies and the fast loop
read) and, when they came from a file, as the exact :class:`~exchanges.base.Candle` values the
engine is fed. Synthetic series (benchmarks) may skip the ``Candle`` objects; exact prices are then
recovered from the floats with ``Decimal(repr(x))``, which is exact for any price written with at
most 15 significant digits.

Screening: the engine's market data refuses misaligned candles and moves larger than
``trading.outlier_max_move`` (see :mod:`core.trading.market_data`). :func:`screen` applies the same rules
up front so both modes see the same candles and bar numbers; what it drops is reported. The outlier
check runs on floats here and on Decimals in the engine: they could only disagree for a move of
exactly the limit, to the last digit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import numpy as np

from core.backtest.candlefile import DataError, FileReport, read_candles
from exchanges.base import Candle
from exchanges.replay import BUNDLED_FILE, bundled_pairs
from strategies.base import Candles


@dataclass(frozen=True, slots=True)
class Bars:
    """One pair's candles, oldest first; ``candles`` is ``None`` for array-only (synthetic) data."""

    arrays: Candles
    candles: tuple[Candle, ...] | None = None
    dropped: Counter[str] = field(default_factory=Counter)
    source: str = ""
    report: FileReport | None = None  # what reading the file found (None for synthetic or cut series)

    @property
    def pair(self) -> str:
        return self.arrays.pair

    @property
    def timeframe_s(self) -> int:
        return self.arrays.timeframe_s

    def __len__(self) -> int:
        return len(self.arrays)

    def time(self, i: int) -> datetime:
        """Open time of bar ``i``."""
        return datetime.fromtimestamp(int(self.arrays.ts[i]), UTC)

    def price(self, i: int, field_name: str) -> Decimal:
        """The exact price ``open``/``high``/``low``/``close`` of bar ``i``."""
        if self.candles is not None:
            # getattr gives Any; the four price fields of a Candle are Decimal
            return getattr(self.candles[i], field_name)  # type: ignore[no-any-return]
        return Decimal(repr(float(getattr(self.arrays, field_name)[i])))

    def volume(self, i: int) -> Decimal:
        if self.candles is not None:
            return self.candles[i].volume
        return Decimal(repr(float(self.arrays.volume[i])))

    def candle_objects(self) -> tuple[Candle, ...]:
        """The candles as the engine's feed hands them out (built from the arrays if need be)."""
        if self.candles is not None:
            return self.candles
        a, tf = self.arrays, self.timeframe_s
        return tuple(Candle(pair=a.pair, timeframe_s=tf, ts=self.time(i), open=self.price(i, "open"),
                            high=self.price(i, "high"), low=self.price(i, "low"), close=self.price(i, "close"),
                            volume=self.volume(i)) for i in range(len(a)))


def to_arrays(pair: str, timeframe_s: int, candles: Sequence[Candle]) -> Candles:
    n = len(candles)
    ts = np.fromiter((int(c.ts.timestamp()) for c in candles), dtype=np.int64, count=n)
    cols = {name: np.fromiter((float(getattr(c, name)) for c in candles), dtype=np.float64, count=n)
            for name in ("open", "high", "low", "close", "volume")}
    return Candles(pair=pair, timeframe_s=timeframe_s, ts=ts, **cols)


def _take(a: Candles, keep: np.ndarray) -> Candles:
    return Candles(pair=a.pair, timeframe_s=a.timeframe_s, ts=a.ts[keep], open=a.open[keep], high=a.high[keep],
                   low=a.low[keep], close=a.close[keep], volume=a.volume[keep])


def accepted_mask(a: Candles, outlier_max_move: float | None) -> tuple[np.ndarray, Counter[str]]:
    """Which bars the engine's market data would accept, and why the others would be refused."""
    dropped: Counter[str] = Counter()
    keep = a.ts % a.timeframe_s == 0
    if not keep.all():
        dropped["misaligned timestamp"] = int((~keep).sum())
    if outlier_max_move is not None and len(a) > 1:
        moves = np.abs(a.close[1:] / a.close[:-1] - 1.0)
        if keep.all() and not (moves > outlier_max_move).any():
            return keep, dropped
        last: float | None = None  # the slow path: "previous close" is the last *accepted* close
        for i in range(len(a)):
            if not keep[i]:
                continue
            c = float(a.close[i])
            if last is not None and abs(c / last - 1.0) > outlier_max_move:
                keep[i] = False
                dropped["outlier move"] += 1
                continue
            last = c
    return keep, dropped


def screen(bars: Bars, outlier_max_move: float | None) -> Bars:
    """Drop the candles the engine would refuse, counting them by reason.

    DataError when fewer than two are left (a file of candles opening at half past the hour, on a 1h
    timeframe, has none the engine would take).
    """
    keep, dropped = accepted_mask(bars.arrays, outlier_max_move)
    if keep.all():
        return bars
    idx = np.flatnonzero(keep)
    if idx.size < 2:
        why = ", ".join(f"{k} {v}" for k, v in dropped.items())
        hints = []
        off = np.flatnonzero(bars.arrays.ts % bars.timeframe_s)
        if off.size:
            hints.append(f"a timestamp must be a candle's open time on the {bars.timeframe_s}s timeframe, not "
                         f"{bars.time(int(off[0])):%Y-%m-%d %H:%M:%S} UTC")
        if dropped["outlier move"]:
            hints.append(f"a close may move at most {outlier_max_move:g} from the one before "
                         "(trading.outlier_max_move)")
        raise DataError(f"{bars.source}: {idx.size} of {len(bars)} candles left once those the engine refuses are "
                        f"left out ({why}); " + "; ".join(hints))
    candles = tuple(bars.candles[i] for i in idx) if bars.candles is not None else None
    return Bars(arrays=_take(bars.arrays, keep), candles=candles, dropped=bars.dropped + dropped, source=bars.source,
                report=bars.report)


def load_bars(pair: str, timeframe_s: int, *, csv: Path | None = None, start: datetime | None = None,
              end: datetime | None = None, lenient: bool = False) -> Bars:
    """Candles from ``csv``, else the bundled hourly BTC/USD file (for BTC/USD only), read by :func:`read_candles`.

    ``ValueError`` (:class:`~core.backtest.candlefile.DataError` for the file's own problems) when they
    do not fit.
    """
    if csv is None and pair not in bundled_pairs():
        raise DataError(f"no candles for {pair}: the bundled file holds {', '.join(bundled_pairs())} only, and "
                        f"its prices are not {pair}'s; pass --csv FILE, or fetch them with `tradectl data download`")
    if csv is None and timeframe_s != 3600:
        raise ValueError(f"the bundled candles are hourly (3600s), not {timeframe_s}s; pass --csv")
    ref = resources.files("exchanges").joinpath("data", BUNDLED_FILE)
    with resources.as_file(ref) as bundled:
        path, source = (csv, None) if csv is not None else (bundled, f"the bundled file {BUNDLED_FILE}")
        candles, report = read_candles(path, pair, timeframe_s, lenient=lenient, start=start, end=end, source=source)
        if len(candles) < 2:
            span = ""
            if start is not None or end is not None:  # say where the file's candles are
                every, _ = read_candles(path, pair, timeframe_s, lenient=lenient, source=source)
                span = (f"; its candles run from {every[0].ts:%Y-%m-%d %H:%M} to {every[-1].ts:%Y-%m-%d %H:%M} UTC"
                        if every else "")
            dropped = (f"; {sum(report.dropped.values())} rows were dropped (--lenient): "
                       + ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items()))) if report.dropped else ""
            raise ValueError(f"fewer than two candles between {start or 'the start'} and {end or 'the end'} "
                             f"in {report.source}{span}{dropped}")
    arrays = to_arrays(pair, timeframe_s, candles)
    _check_floats(arrays, candles, report.source)
    return Bars(arrays=arrays, candles=candles, source=report.source, report=report)


def _check_floats(a: Candles, candles: Sequence[Candle], source: str) -> None:
    """DataError for a value the float arrays cannot hold (``1e400`` becomes inf, ``1e-400`` becomes 0).

    The file's reader checks the exact values; strategies, statistics and the fast path compute in
    floats, where such a price would turn into NaN equity instead of an error.
    """
    for name in ("open", "high", "low", "close", "volume"):
        column = getattr(a, name)
        bad = ~np.isfinite(column) if name == "volume" else ~(np.isfinite(column) & (column > 0))
        if bad.any():
            c = candles[int(np.flatnonzero(bad)[0])]
            raise DataError(f"{source}: the candle at {c.ts:%Y-%m-%d %H:%M:%S} UTC has {name} {getattr(c, name)}, "
                            f"beyond what the backtest counts in (floats of about 1e-300 to 1e300); "
                            f"{int(bad.sum())} such candles")


def synthetic(n: int, *, seed: int, pair: str = "BTC/USD", timeframe_s: int = 3600, start_price: float = 10_000.0,
              vol: float = 0.01, start: datetime = datetime(2020, 1, 1, tzinfo=UTC)) -> Bars:
    """A seeded random walk of log prices with cent prices and positive volume (benchmarks, tests).

    The walk is taken relative to its own 2,000-candle moving average, so that a million candles
    stay within a realistic range instead of drifting to zero or to the sky.
    """
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0.0, vol, n))
    window = min(2000, n)
    csum = np.r_[0.0, np.cumsum(walk)]
    counts = np.minimum(np.arange(1, n + 1), window)
    trend = (csum[1:] - csum[np.arange(1, n + 1) - counts]) / counts
    close = np.round(start_price * np.exp(walk - trend), 2)
    close = np.maximum(close, 0.01)
    open_ = np.empty(n)
    open_[0] = start_price
    open_[1:] = close[:-1]
    spread = np.abs(rng.normal(0.0, vol / 2, n)) * close
    high = np.round(np.maximum(open_, close) + spread, 2)
    low = np.maximum(np.round(np.minimum(open_, close) - spread, 2), 0.01)
    volume = np.round(rng.uniform(50.0, 500.0, n), 2)
    t0 = int(start.timestamp())
    ts = t0 + timeframe_s * np.arange(n, dtype=np.int64)
    arrays = Candles(pair=pair, timeframe_s=timeframe_s, ts=ts, open=open_, high=high, low=low, close=close,
                     volume=volume)
    return Bars(arrays=arrays, source=f"synthetic random walk, seed {seed}")


def close_time(bars: Bars, i: int) -> datetime:
    return bars.time(i) + timedelta(seconds=bars.timeframe_s)
