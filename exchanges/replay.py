"""Historical candles: a validating CSV loader and a paced, resumable replay feed.

The CSV format is the project's normalized one: header ``timestamp,open,high,low,close,volume``,
``timestamp`` the candle's *open* time in ISO 8601 UTC (a timestamp without an offset is read as
UTC), volume in the base asset. Numbers go from text straight to ``Decimal``, never through a float.

Loading never stops at a bad row. Each rejected row is counted under one :class:`Reject` reason
(the first problem found) and the load carries on; :class:`LoadReport` has the counts. Candles with
zero volume are *kept*: exchanges write them for hours without trades (downtime filler, O=H=L=C),
and dropping them would open gaps. They are counted and listed so that consumers can tell them apart;
the paper venue fills nothing in them.

:class:`ReplayFeed` merges several pairs into one stream in close-time order, paces it in wall time,
advances a :class:`~exchanges.clock.SimClock` to each candle's close, and can resume after a
cursor so that a restarted service continues where it stopped instead of trading history twice.
"""

from __future__ import annotations

import asyncio
import enum
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources

from exchanges.base import Candle
from exchanges.clock import SimClock

HEADER = ("timestamp", "open", "high", "low", "close", "volume")
BUNDLED_FILE = "coinbase_BTC-USD_1h.csv"
_SAMPLE_LIMIT = 20
_MAX_LAG_S = 1.0


class ReplayError(Exception):
    """The file as a whole is unusable (missing, wrong header, timeframe not determinable)."""


class Reject(enum.StrEnum):
    """Why a row was left out. One reason per row: the first problem found, in this order."""

    MALFORMED = "malformed"
    BAD_TIMESTAMP = "bad_timestamp"
    NOT_FINITE = "not_finite"
    NEGATIVE_PRICE = "negative_price"
    ZERO_PRICE = "zero_price"
    NEGATIVE_VOLUME = "negative_volume"
    HIGH_BELOW_LOW = "high_below_low"
    OUTSIDE_RANGE = "open_close_outside_range"
    DUPLICATE = "duplicate_timestamp"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load found. ``samples`` keeps the first few rejects as ``(line number, reason)``."""

    source: str
    rows: int
    accepted: int
    rejected: Mapping[Reject, int]
    zero_volume: int
    gaps: int
    samples: tuple[tuple[int, Reject], ...] = ()

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """One pair's validated candles, oldest first, and the report of how they were loaded."""

    pair: str
    timeframe_s: int
    candles: tuple[Candle, ...]
    report: LoadReport
    zero_volume_ts: frozenset[datetime] = field(default_factory=frozenset)

    def is_filler(self, candle: Candle) -> bool:
        """True for a zero-volume candle (no trades in that interval)."""
        return candle.ts in self.zero_volume_ts


_Row = tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]


def parse_rows(lines: Iterable[str], pair: str, *, timeframe_s: int | None = None, source: str = "<lines>") -> CandleSeries:
    """Validate normalized CSV lines (header first) into a :class:`CandleSeries`.

    ``timeframe_s`` defaults to the most common spacing between accepted rows.
    """
    rejected: Counter[Reject] = Counter()
    samples: list[tuple[int, Reject]] = []
    rows: list[_Row] = []
    seen_header = False
    count = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not seen_header:
            names = tuple(part.strip().lower() for part in line.split(","))
            if names != HEADER:
                raise ReplayError(f"{source}: expected header {','.join(HEADER)!r}, got {line[:80]!r}")
            seen_header = True
            continue
        count += 1
        row_or_reason = _parse_line(line, rows[-1][0] if rows else None)
        if isinstance(row_or_reason, Reject):
            rejected[row_or_reason] += 1
            if len(samples) < _SAMPLE_LIMIT:
                samples.append((lineno, row_or_reason))
        else:
            rows.append(row_or_reason)
    if not seen_header:
        raise ReplayError(f"{source}: empty file")
    tf = timeframe_s or _infer_timeframe(rows, source)
    step = timedelta(seconds=tf)
    candles = tuple(Candle(pair=pair, timeframe_s=tf, ts=ts, open=o, high=h, low=lo, close=c, volume=v)
                    for ts, o, h, lo, c, v in rows)
    fillers = frozenset(c.ts for c in candles if c.volume == 0)
    gaps = sum(max(0, round((b.ts - a.ts) / step) - 1) for a, b in zip(candles, candles[1:]))
    report = LoadReport(source=source, rows=count, accepted=len(candles), rejected=dict(rejected),
                        zero_volume=len(fillers), gaps=gaps, samples=tuple(samples))
    return CandleSeries(pair=pair, timeframe_s=tf, candles=candles, report=report, zero_volume_ts=fillers)


def load_csv(path: str | os.PathLike[str], pair: str, *, timeframe_s: int | None = None) -> CandleSeries:
    """Read a normalized CSV file. A missing or unreadable file raises :class:`ReplayError`."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return parse_rows(fh, pair, timeframe_s=timeframe_s, source=str(path))
    except OSError as exc:
        raise ReplayError(f"cannot read candles from {path}: {exc}") from exc


def load_bundled(pair: str = "BTC/USD") -> CandleSeries:
    """The shipped Coinbase BTC/USD hourly candles (see ``exchanges/data/README.md``).

    The prices are BTC/USD whatever ``pair`` says; the argument only names the series, for
    configurations that trade the same data under another label.
    """
    ref = resources.files("exchanges").joinpath("data", BUNDLED_FILE)
    with resources.as_file(ref) as path:
        return load_csv(path, pair, timeframe_s=3600)


def _parse_line(line: str, last_ts: datetime | None) -> _Row | Reject:
    parts = line.split(",")
    if len(parts) != len(HEADER):
        return Reject.MALFORMED
    try:
        ts = datetime.fromisoformat(parts[0].strip())
    except ValueError:
        return Reject.BAD_TIMESTAMP
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    try:
        o, h, lo, c, v = (Decimal(p.strip()) for p in parts[1:])
    except InvalidOperation:
        return Reject.MALFORMED
    prices = (o, h, lo, c)
    if not all(x.is_finite() for x in (*prices, v)):
        return Reject.NOT_FINITE
    if any(x < 0 for x in prices):
        return Reject.NEGATIVE_PRICE
    if any(x == 0 for x in prices):
        return Reject.ZERO_PRICE
    if v < 0:
        return Reject.NEGATIVE_VOLUME
    if h < lo:
        return Reject.HIGH_BELOW_LOW
    if not (lo <= o <= h and lo <= c <= h):
        return Reject.OUTSIDE_RANGE
    if last_ts is not None:
        if ts == last_ts:
            return Reject.DUPLICATE
        if ts < last_ts:
            return Reject.OUT_OF_ORDER
    return ts, o, h, lo, c, v


def _infer_timeframe(rows: Sequence[_Row], source: str) -> int:
    deltas = Counter(int((b[0] - a[0]).total_seconds()) for a, b in zip(rows, rows[1:]))
    if not deltas:
        raise ReplayError(f"{source}: fewer than two valid candles; pass timeframe_s explicitly")
    return deltas.most_common(1)[0][0]


def close_time(candle: Candle) -> datetime:
    """When a candle is complete: its open time plus its timeframe."""
    return candle.ts + timedelta(seconds=candle.timeframe_s)


class ReplayFeed:
    """An async iterator of :class:`Candle` events from history, oldest close first across pairs.

    - ``speed`` is candles per second of wall time; ``0`` or ``inf`` emits as fast as the consumer
      takes them (backtests). Pacing follows a fixed schedule from the first candle, so a slow
      consumer is caught up with, but after falling more than a second behind the schedule restarts
      from now rather than bursting through the backlog.
    - ``clock``: when given, it is advanced to each candle's close time just before the candle is
      handed out, so "now" during its processing is the moment that candle closed. A clock already
      past that moment is left alone.
    - Resuming: ``resume_after`` skips candles whose open time is at or before it, either one
      instant for all pairs or one per pair (exact with several pairs: a stop between two pairs'
      candles of the same hour loses nothing). ``start_index`` skips that many events of the merged
      sequence. :attr:`cursor` / :attr:`cursors` are what to store to resume later.

    One pass only; build a new feed to replay again.
    """

    def __init__(
        self,
        candles_by_pair: Mapping[str, Sequence[Candle]],
        *,
        clock: SimClock | None = None,
        speed: float = 0.0,
        start_index: int = 0,
        resume_after: datetime | Mapping[str, datetime] | None = None,
    ) -> None:
        if speed < 0 or math.isnan(speed):
            raise ValueError("speed must be >= 0 candles per second")
        merged = [c for candles in candles_by_pair.values() for c in candles]
        merged.sort(key=lambda c: (close_time(c), c.pair, c.ts))
        self._events = merged
        self._clock = clock
        self._interval = 0.0 if speed == 0 or math.isinf(speed) else 1.0 / speed
        self._resume = resume_after
        self._next = max(0, start_index)
        self._schedule_start: float | None = None
        self._paced = 0
        self.cursor: datetime | None = None
        self.cursors: dict[str, datetime] = {}
        self.emitted = 0

    @property
    def total(self) -> int:
        return len(self._events)

    @property
    def position(self) -> int:
        """Index in the merged sequence of the next candle to consider (for ``start_index``)."""
        return self._next

    def __aiter__(self) -> ReplayFeed:
        return self

    async def __anext__(self) -> Candle:
        while self._next < len(self._events):
            candle = self._events[self._next]
            self._next += 1
            if self._skipped(candle):
                continue
            await self._pace()
            if self._clock is not None:
                closed = close_time(candle)
                if closed > self._clock.now():
                    self._clock.advance_to(closed)
            self.cursor = candle.ts
            self.cursors[candle.pair] = candle.ts
            self.emitted += 1
            return candle
        raise StopAsyncIteration

    def _skipped(self, candle: Candle) -> bool:
        if self._resume is None:
            return False
        if isinstance(self._resume, datetime):
            return candle.ts <= self._resume
        after = self._resume.get(candle.pair)
        return after is not None and candle.ts <= after

    async def _pace(self) -> None:
        if not self._interval:
            await asyncio.sleep(0)  # let other tasks run between candles even at full speed
            return
        now = time.monotonic()
        if self._schedule_start is None:
            self._schedule_start, self._paced = now, 0
        due = self._schedule_start + self._paced * self._interval
        if now - due > _MAX_LAG_S:
            self._schedule_start, self._paced, due = now, 0, now
        self._paced += 1
        await asyncio.sleep(max(0.0, due - now))
