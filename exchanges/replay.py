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
import heapq
import itertools
import math
import os
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from exchanges.base import Candle
from exchanges.clock import SimClock
from exchanges.errors import TradectlError
from exchanges.packed import PackedCandles, micros

HEADER = ("timestamp", "open", "high", "low", "close", "volume")
BUNDLED_FILE = "coinbase_BTC-USD_1h.csv"
_SAMPLE_LIMIT = 20
_MAX_LAG_S = 1.0


class ReplayError(TradectlError):
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
    """One pair's validated candles, oldest first, and the report of how they were loaded. A loaded file's
    candles are :class:`~exchanges.packed.PackedCandles` (text until read: a Pi holds the whole file)."""

    pair: str
    timeframe_s: int
    candles: Sequence[Candle]
    report: LoadReport
    zero_volume_ts: frozenset[datetime] = field(default_factory=frozenset)

    def is_filler(self, candle: Candle) -> bool:
        """True for a zero-volume candle (no trades in that interval)."""
        return candle.ts in self.zero_volume_ts


_Row = tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]


def parse_rows(lines: Iterable[str], pair: str, *, timeframe_s: int | None = None,
               source: str = "<lines>") -> CandleSeries:
    """Validate normalized CSV lines (header first) into a :class:`CandleSeries`.

    ``timeframe_s`` defaults to the most common spacing between accepted rows.
    """
    rejected: Counter[Reject] = Counter()
    samples: list[tuple[int, Reject]] = []
    # Accepted rows are kept as their open time and their numbers' text, not as Decimals (see exchanges.packed);
    # the timeframe is not known before the last row, so the pack gets it afterwards.
    packed = PackedCandles(pair, 0)
    zero_volume: set[datetime] = set()
    last_ts: datetime | None = None
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
        row_or_reason = _parse_line(line, last_ts)
        if isinstance(row_or_reason, Reject):
            rejected[row_or_reason] += 1
            if len(samples) < _SAMPLE_LIMIT:
                samples.append((lineno, row_or_reason))
        else:
            last_ts = row_or_reason[0]
            packed.append(last_ts, ",".join(part.strip() for part in line.split(",")[1:]))
            if row_or_reason[5] == 0:
                zero_volume.add(last_ts)
    if not seen_header:
        raise ReplayError(f"{source}: empty file")
    opens = [packed.open_us(i) for i in range(len(packed))]
    tf = timeframe_s or _infer_timeframe(opens, source)
    packed.timeframe_s = tf
    step_us = tf * 1_000_000
    gaps = sum(max(0, round((b - a) / step_us) - 1) for a, b in itertools.pairwise(opens))
    fillers = frozenset(zero_volume)
    report = LoadReport(source=source, rows=count, accepted=len(packed), rejected=dict(rejected),
                        zero_volume=len(fillers), gaps=gaps, samples=tuple(samples))
    return CandleSeries(pair=pair, timeframe_s=tf, candles=packed, report=report, zero_volume_ts=fillers)


def load_csv(path: str | os.PathLike[str], pair: str, *, timeframe_s: int | None = None) -> CandleSeries:
    """Read a normalized CSV file. A missing or unreadable file raises :class:`ReplayError`."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:  # a spreadsheet's "CSV UTF-8" starts with a BOM
            return parse_rows(fh, pair, timeframe_s=timeframe_s, source=str(path))
    except OSError as exc:
        raise ReplayError(f"cannot read candles from {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ReplayError(f"cannot read candles from {path}: {why}") from exc


def load_bundled(pair: str = "BTC/USD") -> CandleSeries:
    """The shipped Coinbase BTC/USD hourly candles (see ``exchanges/data/README.md``).

    The prices are BTC/USD whatever ``pair`` says; the argument only names the series, for
    configurations that trade the same data under another label.
    """
    ref = resources.files("exchanges").joinpath("data", BUNDLED_FILE)
    with resources.as_file(ref) as path:
        return load_csv(path, pair, timeframe_s=3600)


def bundled_pairs() -> tuple[str, ...]:
    """The pairs the package ships candles for, from the bundled files' names
    (``<venue>_<BASE>-<QUOTE>_<timeframe>.csv``)."""
    names = (f.name for f in resources.files("exchanges").joinpath("data").iterdir())
    found = {parts[1].replace("-", "/") for n in names if n.endswith(".csv") and len(parts := n.split("_")) == 3}
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """Where the replay takes a pair's candles from, when a pair is added while it runs.

    The rule of the start, a little stricter: the configured CSV (``replay.csv``) when there is one --
    its candle spacing must be the timeframe traded --, else the bundled candles; a pair the bundled
    files do not name is refused (start-up labels the bundled BTC/USD series with any configured pair;
    a pair added from chat gets no borrowed prices).
    """

    csv: Path | None
    timeframe_s: int

    def __call__(self, pair: str) -> CandleSeries:
        if self.csv is not None:
            series = load_csv(self.csv, pair)  # its spacing, so a file of other candles is refused below
        elif pair in bundled_pairs():
            series = load_bundled(pair)
        else:
            raise ReplayError(f"no replay data exists for {pair}: the bundled candles are "
                              f"{', '.join(bundled_pairs())} (set replay.csv to a file of {pair} candles)")
        if series.timeframe_s != self.timeframe_s:
            raise ReplayError(f"replay data for {pair} is {series.timeframe_s}s candles, not {self.timeframe_s}s")
        if not series.candles:
            raise ReplayError(f"no replay data exists for {pair}: {series.report.source} has no valid candles")
        return series


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


def _infer_timeframe(opens_us: Sequence[int], source: str) -> int:
    deltas = Counter(int((b - a) / 1_000_000) for a, b in itertools.pairwise(opens_us))
    if not deltas:
        raise ReplayError(f"{source}: fewer than two valid candles; pass timeframe_s explicitly")
    return deltas.most_common(1)[0][0]


def close_time(candle: Candle) -> datetime:
    """When a candle is complete: its open time plus its timeframe."""
    return candle.ts + timedelta(seconds=candle.timeframe_s)


_Ref = tuple[int, int]  # one candle of the feed: the number of its series and its index there


class _Events:
    """The feed's candles in order: close time, pair, open time (stable across series).

    Kept as two arrays of (series number, index) -- 12 bytes a candle, where a list of tuples takes ~90 --
    and merged series by series (each series is put in order first when it is not), so no list of every
    candle is built to sort it."""

    __slots__ = ("_idx", "_series", "_sid")

    def __init__(self, series: Iterable[Sequence[Candle]]) -> None:
        self._series: list[Sequence[Candle]] = list(series)
        self._sid, self._idx = array("I"), array("q")
        self._extend(heapq.merge(*(self._in_order(s) for s in range(len(self._series))), key=self._key))

    def __len__(self) -> int:
        return len(self._idx)

    def candle(self, k: int) -> Candle:
        return self._series[self._sid[k]][self._idx[k]]

    def add(self, start: int, candles: Sequence[Candle], first: int) -> None:
        """Merge ``candles[first:]`` into the events from ``start`` on."""
        self._series.append(candles)
        sid = len(self._series) - 1
        self._replace_from(start, heapq.merge(self._refs(start), ((sid, i) for i in range(first, len(candles))),
                                              key=self._key))

    def drop_pair(self, start: int, pair: str) -> None:
        """Remove ``pair``'s events from ``start`` on."""
        self._replace_from(start, [ref for ref in self._refs(start) if self._pair(ref) != pair])

    def _key(self, ref: _Ref) -> tuple[int, str, int]:
        """Close time, pair, open time (in microseconds; a packed series builds no candle)."""
        candles, index = self._series[ref[0]], ref[1]
        if isinstance(candles, PackedCandles):
            opened = candles.open_us(index)
            return opened + candles.timeframe_s * 1_000_000, candles.pair, opened
        candle = candles[index]
        opened = micros(candle.ts)
        return opened + candle.timeframe_s * 1_000_000, candle.pair, opened

    def _pair(self, ref: _Ref) -> str:
        candles = self._series[ref[0]]
        return candles.pair if isinstance(candles, PackedCandles) else candles[ref[1]].pair

    def _in_order(self, sid: int) -> Iterable[_Ref]:
        keys = (self._key((sid, i)) for i in range(len(self._series[sid])))
        if all(a <= b for a, b in itertools.pairwise(keys)):
            return ((sid, i) for i in range(len(self._series[sid])))
        return sorted(((sid, i) for i in range(len(self._series[sid]))), key=self._key)

    def _refs(self, start: int) -> Iterable[_Ref]:
        return zip(self._sid[start:], self._idx[start:], strict=True)

    def _replace_from(self, start: int, refs: Iterable[_Ref]) -> None:
        tail = list(refs)
        del self._sid[start:], self._idx[start:]
        self._extend(tail)

    def _extend(self, refs: Iterable[_Ref]) -> None:
        for sid, index in refs:
            self._sid.append(sid)
            self._idx.append(index)


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

    - Pairs while running (:class:`~exchanges.base.PairSubscriptions`): with a ``source`` (a pair ->
      :class:`CandleSeries`, e.g. :class:`ReplaySource`), :meth:`add` loads a pair's candles, hands back
      those already closed at the feed's "now" as history and streams the rest in order with the
      others; :meth:`remove` drops a pair's candles not yet handed out.

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
        source: Callable[[str], CandleSeries] | None = None,
    ) -> None:
        if speed < 0 or math.isnan(speed):
            raise ValueError("speed must be >= 0 candles per second")
        # references (series, index), not candles: a packed series stays packed until a candle is handed out
        self._events = _Events(candles_by_pair.values())
        self._clock = clock
        self._interval = 0.0 if speed == 0 or math.isinf(speed) else 1.0 / speed
        self._resume = resume_after
        self._next = max(0, start_index)
        self._schedule_start: float | None = None
        self._paced = 0
        self.cursor: datetime | None = None
        self.cursors: dict[str, datetime] = {}
        self.emitted = 0
        self._source = source
        self._pairs = set(candles_by_pair)

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
            candle = self._events.candle(self._next)
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

    async def add(self, pair: str) -> Sequence[Candle]:
        """Stream ``pair`` from the feed's "now" on; its candles closed by then come back as history.

        "Now" is the clock when the feed has one, else the last candle handed out. Raises
        :class:`ReplayError` (nothing changed) without a source or without data for the pair."""
        if pair in self._pairs:
            return ()
        if self._source is None:
            raise ReplayError(f"this replay cannot add {pair}: it was built without a candle source")
        series = await asyncio.to_thread(self._source, pair)
        if pair in self._pairs:  # added while loading
            return ()
        now = self._clock.now() if self._clock is not None else None
        if now is not None:
            past = [c for c in series.candles if close_time(c) <= now]
        else:
            past = [c for c in series.candles if self.cursor is not None and c.ts <= self.cursor]
        self._events.add(self._next, series.candles, len(past))
        self._pairs.add(pair)
        return tuple(past)

    async def remove(self, pair: str) -> None:
        """Drop ``pair``'s candles not handed out yet (those already out were processed)."""
        self._pairs.discard(pair)
        self._events.drop_pair(self._next, pair)

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
