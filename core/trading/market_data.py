"""Market data: bounded numpy buffers per pair and timeframe, aligned higher timeframes,
staleness, and a counted outlier filter.

Only the engine's feed task writes here (one writer; asyncio gives us no interleaving inside a
call), so candle and ticker updates cannot race. Readers get copies (:meth:`window`), so a scan
running in a worker thread never sees a buffer change under it.

Higher timeframes are built from candles bucketed by ``ts - ts % tf`` on true UTC boundaries, never
by array position: a series that starts mid-interval leaves its first bucket incomplete, and an
incomplete bucket is never emitted as if it were whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from exchanges.base import Candle, Ticker
from strategies.base import Candles


class _Buffer:
    __slots__ = ("cap", "n", "ohlcv", "ts")

    def __init__(self, capacity: int) -> None:
        self.cap = capacity
        self.n = 0
        self.ts = np.zeros(capacity * 2, dtype=np.int64)
        self.ohlcv = np.zeros((5, capacity * 2), dtype=np.float64)

    def append(self, ts: int, values: tuple[float, float, float, float, float]) -> None:
        if self.n == self.ts.shape[0]:
            keep = self.cap
            self.ts[:keep] = self.ts[self.n - keep:self.n]
            self.ohlcv[:, :keep] = self.ohlcv[:, self.n - keep:self.n]
            self.n = keep
        self.ts[self.n] = ts
        self.ohlcv[:, self.n] = values
        self.n += 1

    def last_ts(self) -> int | None:
        return int(self.ts[self.n - 1]) if self.n else None

    def window(self, pair: str, tf: int, count: int) -> Candles:
        lo = max(0, self.n - min(count, self.cap))
        o = self.ohlcv[:, lo:self.n].copy()
        return Candles(pair=pair, timeframe_s=tf, ts=self.ts[lo:self.n].copy(),
                       open=o[0], high=o[1], low=o[2], close=o[3], volume=o[4])


@dataclass(frozen=True, slots=True)
class Ingest:
    accepted: bool
    reason: str = ""
    closed_higher: tuple[Candle, ...] = ()


@dataclass
class _Bucket:
    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    count: int
    complete_from_start: bool


_ACCEPTED = Ingest(True)  # a candle taken that closed no higher-timeframe candle (frozen: shared)


class MarketData:
    def __init__(
        self,
        base_timeframe_s: int,
        higher_timeframes_s: tuple[int, ...] = (),
        capacity: int = 1000,
        outlier_max_move: Decimal | None = Decimal("0.5"),
    ) -> None:
        for tf in higher_timeframes_s:
            if tf % base_timeframe_s or tf <= base_timeframe_s:
                raise ValueError(f"higher timeframe {tf}s is not a multiple of the base {base_timeframe_s}s")
        self.base_tf = base_timeframe_s
        self.higher = higher_timeframes_s
        self.capacity = capacity
        self.outlier_max_move = outlier_max_move
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._last_close: dict[str, Decimal] = {}
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._tickers: dict[str, Ticker] = {}
        self._last_update: dict[str, datetime] = {}
        self.rejected: Counter[str] = Counter()
        self.accepted = 0

    def _buf(self, pair: str, tf: int) -> _Buffer:
        key = (pair, tf)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = _Buffer(self.capacity)
        return buf

    def add_candle(self, c: Candle) -> Ingest:
        """Validate and store one closed base-timeframe candle; returns any higher-tf candles it closed."""
        reason, ts = self._check(c)
        if reason:
            self.rejected[reason] += 1
            return Ingest(False, reason)
        buf = self._buf(c.pair, self.base_tf)
        buf.append(ts, (float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume)))
        self._last_close[c.pair] = c.close
        close_time = datetime.fromtimestamp(ts + self.base_tf, UTC)
        prev = self._last_update.get(c.pair)
        self._last_update[c.pair] = close_time if prev is None or close_time > prev else prev
        self.accepted += 1
        if not self.higher:
            return _ACCEPTED
        closed = tuple(x for tf in self.higher if (x := self._roll(c, ts, tf)) is not None)
        return Ingest(True, "", closed)

    def _check(self, c: Candle) -> tuple[str, int]:
        """Why ``c`` is refused ("" when it is not), and its open time in epoch seconds."""
        o, h, lo, cl, v = c.open, c.high, c.low, c.close, c.volume
        if c.timeframe_s != self.base_tf:
            return "wrong timeframe", 0
        if not (o.is_finite() and h.is_finite() and lo.is_finite() and cl.is_finite() and v.is_finite()):
            return "non-finite value", 0
        if o <= 0 or h <= 0 or lo <= 0 or cl <= 0:
            return "non-positive price", 0
        if v < 0:
            return "negative volume", 0
        if h < lo or not (lo <= o <= h and lo <= cl <= h):
            return "inconsistent high/low", 0
        if c.ts.tzinfo is None:
            return "naive timestamp", 0
        ts = int(c.ts.timestamp())
        if ts % self.base_tf:
            return "misaligned timestamp", ts
        last = self._buf(c.pair, self.base_tf).last_ts()
        if last is not None:
            if ts == last:
                return "duplicate candle", ts
            if ts < last:
                return "out-of-order candle", ts
        prev = self._last_close.get(c.pair)
        if prev is not None and self.outlier_max_move is not None:
            move = abs(cl / prev - 1)
            if move > self.outlier_max_move:
                return "outlier move", ts
        return "", ts

    def _roll(self, c: Candle, ts: int, tf: int) -> Candle | None:
        start = ts - ts % tf
        key = (c.pair, tf)
        bucket = self._buckets.get(key)
        emitted: Candle | None = None
        if bucket is not None and bucket.start != start:
            bucket = None  # a gap skipped the rest of that bucket: it never completed
        if bucket is None:
            bucket = _Bucket(start, c.open, c.high, c.low, c.close, c.volume, 1, ts == start)
            self._buckets[key] = bucket
        else:
            bucket.high = max(bucket.high, c.high)
            bucket.low = min(bucket.low, c.low)
            bucket.close = c.close
            bucket.volume += c.volume
            bucket.count += 1
        if ts + self.base_tf == start + tf:
            if bucket.complete_from_start and bucket.count == tf // self.base_tf:
                emitted = Candle(c.pair, tf, datetime.fromtimestamp(start, UTC), bucket.open, bucket.high,
                                 bucket.low, bucket.close, bucket.volume)
                self._buf(c.pair, tf).append(start, (float(bucket.open), float(bucket.high), float(bucket.low),
                                                     float(bucket.close), float(bucket.volume)))
            else:
                self.rejected["incomplete higher-timeframe bucket"] += 1
            del self._buckets[key]
        return emitted

    def is_last(self, c: Candle) -> bool:
        """True when ``c`` is the pair's latest stored base candle (a retried candle is not stored twice)."""
        return self._buf(c.pair, self.base_tf).last_ts() == int(c.ts.timestamp())

    def add_ticker(self, t: Ticker) -> None:
        if t.last.is_finite() and t.last > 0:
            self._tickers[t.pair] = t
            prev = self._last_update.get(t.pair)
            if prev is None or t.ts > prev:
                self._last_update[t.pair] = t.ts
        else:
            self.rejected["bad ticker"] += 1

    def window(self, pair: str, count: int, timeframe_s: int | None = None) -> Candles:
        return self._buf(pair, timeframe_s or self.base_tf).window(pair, timeframe_s or self.base_tf, count)

    def bars(self, pair: str, timeframe_s: int | None = None) -> int:
        return self._buf(pair, timeframe_s or self.base_tf).n

    def price(self, pair: str) -> Decimal | None:
        """The freshest price: a ticker's last if newer than the last candle, else the last close."""
        t = self._tickers.get(pair)
        close = self._last_close.get(pair)
        if t is not None and (self._last_update.get(pair) == t.ts or close is None):
            return t.last
        return close

    def priced(self, pair: str) -> bool:
        """Whether ``pair`` has a price yet (an unsent order of a pair without one waits for it)."""
        return self.price(pair) is not None

    def age_s(self, pair: str, now: datetime) -> float | None:
        last = self._last_update.get(pair)
        return None if last is None else max(0.0, (now - last).total_seconds())
