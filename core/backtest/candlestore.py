"""A downloaded candle file's summary, kept beside it, and writes that only add rows at its end.

``tradectl data list`` and a resumed ``data download`` need a file's row count, first and last candle and
its holes, not its candles: reading a year of 1-minute candles in full takes seconds and half a gigabyte.
So every download leaves a summary beside the file (``.<file>.summary``, JSON) keyed by the SHA-256 of
the file's bytes. A reader hashes the file (streamed, a few hundredths of a second for 30 MB) and uses the
summary only when the digest matches; a file edited by hand, replaced or written by another process does
not match, is read in full with the strict reader (:mod:`core.backtest.candlefile`), and gets a new
summary. A summary is therefore never stale, and deleting it costs one full read.

A download that only adds candles after the file's last one writes the old bytes as they are and the new
rows after them, without parsing or rendering the stored rows again; the new file still replaces the old
one in one rename (:func:`persistence.files.atomic_write`). It is not appended to in place: backtests and
``data list`` read the file without its lock, and a row cut short by a kill (volume ``1.5`` written as
``1``) would still read as a candle.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.backtest.candlefile import HEADER, DataError, holes_between, outline, parse_candles
from exchanges.base import Candle
from persistence.files import atomic_write

SUMMARY_VERSION = 1
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Gaps:
    """Holes in a series: ``count`` gaps, ``missing`` candles in all; the first and the last hole's
    (last candle before it, candles missing)."""

    count: int = 0
    missing: int = 0
    first: tuple[datetime, int] | None = None
    last: tuple[datetime, int] | None = None

    def describe(self, timeframe_s: int) -> str:
        if not self.count or self.first is None or self.last is None:
            return "none"
        span = timedelta(seconds=timeframe_s)

        def hole(at: tuple[datetime, int]) -> str:
            return f"{at[1]} missing from {at[0] + span:%Y-%m-%d %H:%M}"
        text = f"{self.count} ({self.missing} candles missing); first: {hole(self.first)}"
        return text + (f"; last: {hole(self.last)}" if self.count > 1 else "")


@dataclass(frozen=True, slots=True)
class Summary:
    """What a candle file holds, for the bytes with SHA-256 ``digest``."""

    timeframe_s: int
    rows: int
    first: datetime | None
    last: datetime | None
    holes: tuple[tuple[datetime, int], ...]  # (last candle before the hole, candles missing), oldest first
    gridded: bool  # every candle a whole number of timeframes after the first: holes say which are stored
    digest: str
    size: int

    @property
    def gaps(self) -> Gaps:
        if not self.holes:
            return Gaps()
        return Gaps(count=len(self.holes), missing=sum(n for _, n in self.holes), first=self.holes[0],
                    last=self.holes[-1])

    def has(self, ts: datetime) -> bool:
        """Whether the file holds a candle opening at ``ts``. Exact for a gridded file; otherwise only its
        first and last are known (a later write removes what it already holds)."""
        if self.first is None or self.last is None or not self.first <= ts <= self.last:
            return False
        if not self.gridded:
            return ts in (self.first, self.last)
        if int((ts - self.first).total_seconds()) % self.timeframe_s:
            return False
        at = bisect.bisect_left(self.holes, (ts,)) - 1  # the last hole that starts before ts
        if at < 0:
            return True
        after, n = self.holes[at]
        return ts > after + timedelta(seconds=self.timeframe_s * n)

    def missing(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """The holes' missing open times within ``[lo, hi)``, as ``[from, to)`` ranges."""
        span = timedelta(seconds=self.timeframe_s)
        out = []
        # from the last hole starting before lo (holes do not overlap, so none before it reaches lo)
        for at in range(max(bisect.bisect_left(self.holes, (lo,)) - 1, 0), len(self.holes)):
            after, n = self.holes[at]
            if after >= hi:
                break
            a, b = max(after + span, lo), min(after + span * (n + 1), hi)
            if a < b:
                out.append((a, b))
        return out

    def to_json(self) -> str:
        return json.dumps({"version": SUMMARY_VERSION, "timeframe_s": self.timeframe_s, "rows": self.rows,
                           "first": _epoch(self.first), "last": _epoch(self.last), "gridded": self.gridded,
                           "holes": [[_epoch(a), n] for a, n in self.holes], "sha256": self.digest,
                           "size": self.size}, separators=(",", ":"))


def _epoch(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp())


def _time(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def summary_path(path: Path) -> Path:
    return path.parent / f".{path.name}.summary"


def summarize(candles: Sequence[Candle], timeframe_s: int, data: bytes) -> Summary:
    holes, gridded = holes_between((c.ts for c in candles), timeframe_s)
    return Summary(timeframe_s=timeframe_s, rows=len(candles), first=candles[0].ts if candles else None,
                   last=candles[-1].ts if candles else None, holes=tuple(holes), gridded=gridded,
                   digest=hashlib.sha256(data).hexdigest(), size=len(data))


def _digest(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def _cached(path: Path, timeframe_s: int) -> Summary | None:
    try:
        raw = json.loads(summary_path(path).read_text(encoding="utf-8"))
        if raw.get("version") != SUMMARY_VERSION or raw.get("timeframe_s") != timeframe_s:
            return None
        return Summary(timeframe_s=timeframe_s, rows=int(raw["rows"]), first=_time(raw["first"]),
                       last=_time(raw["last"]), holes=tuple((datetime.fromtimestamp(a, UTC), int(n))
                                                            for a, n in raw["holes"]),
                       gridded=bool(raw["gridded"]), digest=str(raw["sha256"]), size=int(raw["size"]))
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None  # none yet, or unreadable: the file is read in full instead


def parse(data: bytes, path: Path, pair: str, timeframe_s: int) -> list[Candle]:
    """The candles of a file's bytes, by the strict reader (DataError names the line)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read candles from {path}: {exc}") from exc
    return list(parse_candles(text, str(path), pair, timeframe_s)[0])


def save_summary(path: Path, summary: Summary) -> None:
    """Best effort: without a summary the next reader reads the file in full (a read-only data directory)."""
    try:
        atomic_write(summary_path(path), summary.to_json().encode("utf-8"))
    except OSError:
        pass


def load(path: Path, pair: str, timeframe_s: int) -> Summary | None:
    """The summary of the file as it is now (None when there is no file); DataError when it does not read."""
    try:
        digest, size = _digest(path)
    except (FileNotFoundError, NotADirectoryError):  # a folder on the way that is a file: said when writing
        return None
    except OSError as exc:
        raise DataError(f"cannot read candles from {path}: {exc.strerror or exc}") from exc
    cached = _cached(path, timeframe_s)
    if cached is not None and (cached.digest, cached.size) == (digest, size):
        return cached
    return read_in_full(path, pair, timeframe_s)


def read_in_full(path: Path, pair: str, timeframe_s: int) -> Summary:
    """A new summary of the file, by the strict reader, of the very bytes read (saved for the next reader)."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read candles from {path}: {exc}") from exc
    seen = outline(text, str(path), pair, timeframe_s)
    summary = Summary(timeframe_s=timeframe_s, rows=seen.rows, first=seen.first, last=seen.last, holes=seen.holes,
                      gridded=seen.gridded, digest=hashlib.sha256(data).hexdigest(), size=len(data))
    save_summary(path, summary)
    return summary


def rows(candles: Iterable[Candle]) -> str:
    """File rows for candles: ISO 8601 open times, exact decimals as the venue sent them."""
    return "".join(f"{c.ts:%Y-%m-%dT%H:%M:%SZ},{c.open:f},{c.high:f},{c.low:f},{c.close:f},{c.volume:f}\n"
                   for c in candles)


def render(candles: Iterable[Candle]) -> str:
    """A whole file's text: the strict header, one row per candle."""
    return ",".join(HEADER) + "\n" + rows(candles)


def write(path: Path, summary: Summary | None, new: Sequence[Candle], pair: str,
          timeframe_s: int) -> tuple[Summary, int]:
    """Store ``new`` (sorted, none already in the file that ``summary`` describes) with the file's candles,
    in one rename; the caller holds the file's lock. Returns the new summary and the candles added.

    Candles all after the file's last one are written after its bytes as they are; anything else (candles
    before the first, in a hole, or a file that no longer matches ``summary``) rewrites the merged series.
    """
    try:
        old = path.read_bytes()
    except FileNotFoundError:  # removed by hand since: the new candles make the file
        old, summary = b"", None
    if summary is not None and hashlib.sha256(old).hexdigest() != summary.digest:
        summary = summarize(parse(old, path, pair, timeframe_s), timeframe_s, old)
    if summary is not None and summary.last is not None and new[0].ts > summary.last:
        # the last row read whole (the digest matches), so a file edited without a final newline gets one
        data = old + (b"" if old.endswith((b"\n", b"\r")) else b"\n") + rows(new).encode("utf-8")
        holes, gridded = holes_between([summary.last, *(c.ts for c in new)], timeframe_s)
        after = replace(summary, rows=summary.rows + len(new), last=new[-1].ts, holes=(*summary.holes, *holes),
                        gridded=summary.gridded and gridded, digest=hashlib.sha256(data).hexdigest(),
                        size=len(data))
        added = len(new)
    else:
        stored = parse(old, path, pair, timeframe_s) if old else []
        have = {c.ts for c in stored}
        merged = sorted([*stored, *(c for c in new if c.ts not in have)], key=lambda c: c.ts)
        added = len(merged) - len(stored)
        if not added:
            return summary or summarize(stored, timeframe_s, old), 0
        data = render(merged).encode("utf-8")
        after = summarize(merged, timeframe_s, data)
    atomic_write(path, data)
    for stale in path.parent.glob(f"..{path.name}.*.tmp"):  # a summary's or a record's temporary copy a kill left
        stale.unlink(missing_ok=True)
    save_summary(path, after)
    return after, added
