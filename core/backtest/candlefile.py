"""Reading a candle CSV for a backtest: strict by default, every problem named by its line.

The format is the project's normalized one (header ``timestamp,open,high,low,close,volume``, oldest
first). ``timestamp`` is the candle's open time, as ISO 8601 (UTC when it has no offset), epoch seconds
or epoch milliseconds; which epoch unit is told by magnitude (``1e8 <= x < 1e11`` seconds, i.e. 1973 to
5138; ``1e11 <= x < 1e14`` milliseconds) and anything else is an unknown format rather than a guess
(milliseconds read as seconds land in the years 1516-1517 or 50000).

A row has a problem when it is malformed, its timestamp is in an unknown format, a cell is not finite,
a price is not positive, the volume is negative, its high is below its low or its open or close lies
outside them, its timestamp repeats an earlier row's (``duplicate timestamp``) or comes before the
latest so far (``out of order``). Strict (the default): any problem is an error (:class:`DataError`)
that lists the lines. Lenient: those rows are dropped and counted per problem. A file whose rows run
newest first is an error either way, said as such. Gaps (missing candles) are never an error; they are
counted and shown.

The engine's own refusals (misaligned timestamps, outlier moves) are applied afterwards by
:func:`core.backtest.data.screen`, as before.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from exchanges.base import Candle
from exchanges.errors import TradectlError

HEADER = ("timestamp", "open", "high", "low", "close", "volume")
SHOWN = 10  # problem lines listed in a strict error
_EPOCH = re.compile(r"^\d+(\.\d+)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class DataError(TradectlError, ValueError):
    """The candle file cannot be backtested as it is; the message names the lines and problems."""


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class FileReport:
    """What reading a candle file found: rows, dropped rows per problem, gaps, timestamp formats."""

    source: str
    rows: int
    dropped: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    missing: int = 0
    largest_gap: tuple[datetime, int] | None = None  # (last candle before it, candles missing)
    formats: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Plain lines for the command's output."""
        out = [f"data: {self.rows} rows from {self.source}" + (f" (timestamps: {', '.join(self.formats)})"
                                                             if self.formats else "")]
        if self.dropped:
            out.append("dropped (--lenient): " + ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())))
        if self.gaps and self.largest_gap is not None:
            at, n = self.largest_gap
            out.append(f"gaps: {self.gaps} ({self.missing} candles missing; largest {n} after "
                       f"{at:%Y-%m-%d %H:%M} UTC)")
        else:
            out.append("gaps: none")
        return out


def parse_time(text: str) -> tuple[datetime, str] | None:
    """(UTC time, format name) of a timestamp cell, or None when its format is not one we read."""
    if _EPOCH.match(text):
        value = float(text)
        if 1e8 <= value < 1e11:
            return datetime.fromtimestamp(value, UTC), "epoch seconds"
        if 1e11 <= value < 1e14:
            return datetime.fromtimestamp(value / 1000, UTC), "epoch milliseconds"
        return None
    if not _ISO_DATE.match(text):
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)), "ISO 8601"


_Row = tuple[int, datetime, Decimal, Decimal, Decimal, Decimal, Decimal]


def _row(lineno: int, line: str, formats: set[str]) -> _Row | Problem:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(HEADER):
        return Problem(lineno, "malformed row", f"{len(parts)} cells, expected {len(HEADER)}")
    when = parse_time(parts[0])
    if when is None:
        return Problem(lineno, "unknown timestamp format",
                       f"{parts[0][:40]!r} (ISO 8601, epoch seconds or epoch milliseconds)")
    formats.add(when[1])
    try:
        if any("_" in p for p in parts[1:]):  # Decimal("1_000") is 1000: a typo or another format, not a number here
            raise InvalidOperation
        o, h, lo, c, v = (Decimal(p) for p in parts[1:])
    except InvalidOperation:
        return Problem(lineno, "malformed row", "a price or volume is not a number")
    for name, x in zip(HEADER[1:], (o, h, lo, c, v), strict=True):
        if not x.is_finite():
            return Problem(lineno, "non-finite value", f"{name} is {x}")
    for name, x in zip(HEADER[1:5], (o, h, lo, c), strict=True):
        if x <= 0:
            return Problem(lineno, "non-positive price", f"{name} is {x}")
    if v < 0:
        return Problem(lineno, "negative volume", f"volume is {v}")
    if h < lo or not (lo <= o <= h and lo <= c <= h):
        return Problem(lineno, "inconsistent high/low", f"open {o}, high {h}, low {lo}, close {c}")
    return lineno, when[0], o, h, lo, c, v


def _reversed(rows: list[_Row]) -> bool:
    return len(rows) > 1 and all(b[1] < a[1] for a, b in itertools.pairwise(rows))


def _ordered(rows: list[_Row]) -> tuple[list[_Row], list[Problem]]:
    """Rows in file order minus duplicates and rows earlier than the latest before them."""
    kept: list[_Row] = []
    problems: list[Problem] = []
    first_line: dict[datetime, int] = {}
    for row in rows:
        lineno, ts = row[0], row[1]
        if ts in first_line:
            problems.append(Problem(lineno, "duplicate timestamp", f"{ts:%Y-%m-%d %H:%M:%S} UTC, as on line "
                                                                   f"{first_line[ts]}"))
        elif kept and ts < kept[-1][1]:
            first_line[ts] = lineno
            last_line, last_ts = kept[-1][0], kept[-1][1]
            problems.append(Problem(lineno, "out of order", f"{ts:%Y-%m-%d %H:%M:%S} UTC comes after "
                                                            f"{last_ts:%Y-%m-%d %H:%M:%S} UTC (line {last_line})"))
        else:
            first_line[ts] = lineno
            kept.append(row)
    return kept, problems


def _refuse(source: str, problems: list[Problem]) -> DataError:
    counts = Counter(p.kind for p in problems)
    head = (f"{source}: {len(problems)} bad rows (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + "); fix the file or pass --lenient to drop them")
    shown = [f"  line {p.line}: {p.kind}: {p.detail}" for p in sorted(problems, key=lambda p: p.line)[:SHOWN]]
    more = [f"  ... and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []
    return DataError("\n".join([head, *shown, *more]))


def _gaps(candles: list[Candle], timeframe_s: int) -> tuple[int, int, tuple[datetime, int] | None]:
    gaps = missing = 0
    largest: tuple[datetime, int] | None = None
    for a, b in itertools.pairwise(candles):
        n = math.floor((b.ts - a.ts).total_seconds() / timeframe_s) - 1
        if n > 0:
            gaps, missing = gaps + 1, missing + n
            if largest is None or n > largest[1]:
                largest = (a.ts, n)
    return gaps, missing, largest


def _spacing(rows: list[_Row]) -> int | None:
    deltas = Counter(int((b[1] - a[1]).total_seconds()) for a, b in itertools.pairwise(rows))
    return deltas.most_common(1)[0][0] if deltas else None


def _step(rows: list[_Row]) -> int:
    """The greatest common divisor of the rows' distances: the timeframe of a file whose candles are mostly
    apart by more than one (an illiquid pair's, where the venue leaves out intervals without trades)."""
    return math.gcd(*(int((b[1] - a[1]).total_seconds()) for a, b in itertools.pairwise(rows)))


def read_candles(path: Path, pair: str, timeframe_s: int, *, lenient: bool = False, source: str | None = None,
                 start: datetime | None = None, end: datetime | None = None) -> tuple[tuple[Candle, ...], FileReport]:
    """The file's candles with open times in ``[start, end)``, oldest first, and what reading found.

    :class:`DataError` when the file cannot be used. The whole file is checked; gaps are counted in the
    range only.
    """
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets' "CSV UTF-8" starts with a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read candles from {name}: {exc}") from exc
    return parse_candles(text, name, pair, timeframe_s, lenient=lenient, start=start, end=end)


def parse_candles(text: str, name: str, pair: str, timeframe_s: int, *, lenient: bool = False,
                  start: datetime | None = None, end: datetime | None = None) -> tuple[tuple[Candle, ...], FileReport]:
    """:func:`read_candles` of text already read (``name`` says where from): a caller that needs the very
    bytes it parsed (to key a summary by their digest) reads them once."""
    rows: list[_Row] = []
    problems: list[Problem] = []
    formats: set[str] = set()
    header_seen, count = False, 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not header_seen:
            if tuple(p.strip().lower() for p in line.split(",")) != HEADER:
                raise DataError(f"{name} line {lineno}: expected the header {','.join(HEADER)!r}, got {line[:80]!r}")
            header_seen = True
            continue
        count += 1
        parsed = _row(lineno, line, formats)
        if isinstance(parsed, Problem):
            problems.append(parsed)
        else:
            rows.append(parsed)
    if not header_seen:
        raise DataError(f"{name}: empty file")
    if _reversed(rows):
        raise DataError(f"{name}: the rows run newest first (line {rows[0][0]} is {rows[0][1]:%Y-%m-%d %H:%M} UTC, "
                        f"line {rows[-1][0]} is {rows[-1][1]:%Y-%m-%d %H:%M} UTC); sort the file oldest first")
    kept, order_problems = _ordered(rows)
    problems += order_problems
    if problems and not lenient:
        raise _refuse(name, problems)
    spacing = _spacing(kept)
    if spacing is not None and spacing != timeframe_s and _step(kept) != timeframe_s:
        raise DataError(f"{name}: the candles are mostly {spacing}s apart but the timeframe is {timeframe_s}s; "
                        "pass the file's --timeframe")
    candles = [Candle(pair=pair, timeframe_s=timeframe_s, ts=ts, open=o, high=h, low=lo, close=c, volume=v)
               for _line, ts, o, h, lo, c, v in kept
               if (start is None or ts >= start) and (end is None or ts < end)]
    gaps, missing, largest = _gaps(candles, timeframe_s)
    report = FileReport(source=name, rows=count, dropped=Counter(p.kind for p in problems), gaps=gaps,
                        missing=missing, largest_gap=largest, formats=tuple(sorted(formats)))
    return tuple(candles), report


@dataclass(frozen=True, slots=True)
class Outline:
    """What a strict read of a candle file finds, without its candles (summaries of big files)."""

    rows: int
    first: datetime | None
    last: datetime | None
    holes: tuple[tuple[datetime, int], ...]  # (last candle before the hole, candles missing)
    gridded: bool  # every distance between candles a whole number of timeframes


def outline(text: str, name: str, pair: str, timeframe_s: int) -> Outline:
    """The strict reader's verdict on ``text`` in one pass that keeps no candle: a few megabytes for a year
    of 1-minute candles where :func:`parse_candles` takes half a gigabyte. A file with any problem is
    handed to :func:`parse_candles`, so the error is the same word for word."""
    formats: set[str] = set()
    header_seen, count, step, gridded = False, 0, 0, True
    first: datetime | None = None
    last: datetime | None = None
    deltas: Counter[int] = Counter()
    holes: list[tuple[datetime, int]] = []
    fine = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not header_seen:
            header_seen = fine = tuple(p.strip().lower() for p in line.split(",")) == HEADER
            if not fine:
                break
            continue
        count += 1
        parsed = _row(lineno, line, formats)
        if isinstance(parsed, Problem) or (last is not None and parsed[1] <= last):
            fine = False
            break
        ts = parsed[1]
        if last is None:
            first = ts
        else:
            seconds = int((ts - last).total_seconds())
            deltas[seconds] += 1
            step = math.gcd(step, seconds)
            gridded = gridded and seconds % timeframe_s == 0
            if (n := seconds // timeframe_s - 1) > 0:
                holes.append((last, n))
        last = ts
    spacing = deltas.most_common(1)[0][0] if deltas else None
    if not fine or not header_seen or (spacing is not None and spacing != timeframe_s and step != timeframe_s):
        candles, report = parse_candles(text, name, pair, timeframe_s)  # raises DataError naming the lines
        found, on_grid = holes_between((c.ts for c in candles), timeframe_s)
        return Outline(rows=report.rows, first=candles[0].ts if candles else None,
                       last=candles[-1].ts if candles else None, holes=tuple(found), gridded=on_grid)
    return Outline(rows=count, first=first, last=last, holes=tuple(holes), gridded=gridded)


def holes_between(times: Iterable[datetime], timeframe_s: int) -> tuple[list[tuple[datetime, int]], bool]:
    """The holes between consecutive open times (last candle before each, candles missing), and whether
    every distance is a whole number of candles."""
    holes: list[tuple[datetime, int]] = []
    gridded = True
    for a, b in itertools.pairwise(times):
        seconds = int((b - a).total_seconds())
        gridded = gridded and seconds % timeframe_s == 0
        if (n := seconds // timeframe_s - 1) > 0:
            holes.append((a, n))
    return holes, gridded
