"""Asking the venue again for the holes a stored candle file has inside a download's range, a bounded
number of times.

A hole inside the stored range is a page the venue sent empty or short: an outage, an illiquid hour, or
a glitch that the next request would not repeat. A download given ``--since`` re-asks the holes inside
``[--since, --until)``; each hole is asked again by at most :data:`REFILL_TRIES` downloads. When those
found nothing, the venue has no candles there and the hole is not asked for again (it stays counted in
the gaps, as the market the venue recorded). What was asked and found nothing is kept beside the file
(``.<file>.refills``, JSON); deleting it only makes the holes be asked again.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.backtest.candlestore import Summary
from persistence.files import atomic_write

REFILL_TRIES = 2  # later downloads that may re-ask one hole before it counts as missing at the venue

Record = dict[tuple[int, int], int]  # (from, to) in epoch seconds -> re-asks that found nothing


@dataclass(frozen=True, slots=True)
class Hole:
    """Missing open times ``[lo, hi)`` and how many re-asks found nothing there so far."""

    lo: datetime
    hi: datetime
    tries: int = 0

    def candles(self, timeframe_s: int) -> int:
        return int((self.hi - self.lo).total_seconds()) // timeframe_s


def record_path(path: Path) -> Path:
    return path.parent / f".{path.name}.refills"


def load_record(path: Path) -> Record:
    try:
        raw = json.loads(record_path(path).read_text(encoding="utf-8"))
        return {(int(a), int(b)): int(t) for a, b, t in raw["asked"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # none yet, or unreadable: the holes are asked again, which is harmless


def save_record(path: Path, record: Record) -> None:
    asked = [[a, b, t] for (a, b), t in sorted(record.items())]
    try:
        if asked or record_path(path).exists():
            atomic_write(record_path(path), json.dumps({"asked": asked}).encode("utf-8"))
    except OSError:
        pass  # best effort: without it the holes are asked again


def _epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def _tries(record: Record, keys: list[tuple[int, int]], lo: datetime, hi: datetime) -> int:
    at = bisect.bisect_right(keys, (_epoch(lo), 2**62)) - 1  # the last entry starting at or before lo
    if at >= 0 and keys[at][1] >= _epoch(hi):
        return record[keys[at]]
    return 0


def _overlaps(ranges: list[tuple[int, int]]) -> Callable[[tuple[int, int]], bool]:
    """Whether a range overlaps one of ``ranges`` (sorted, not overlapping each other)."""
    starts = [a for a, _ in ranges]

    def test(key: tuple[int, int]) -> bool:
        at = bisect.bisect_left(starts, key[1]) - 1  # the last range starting before key ends
        return at >= 0 and ranges[at][1] > key[0]
    return test


@dataclass(frozen=True, slots=True)
class Plan:
    ask: tuple[Hole, ...] = ()
    settled: tuple[Hole, ...] = ()  # re-asked REFILL_TRIES times without a candle: not asked again
    out_of_reach: tuple[Hole, ...] = ()  # older than the venue serves (Kraken's most recent 720 candles)


def plan(summary: Summary, lo: datetime, hi: datetime, record: Record, reach: datetime | None) -> Plan:
    """The holes inside ``[lo, hi)``: to ask again, settled, or out of the venue's reach."""
    ask, settled, far = [], [], []
    keys = sorted(record)
    for a, b in summary.missing(lo, hi):
        hole = Hole(a, b, _tries(record, keys, a, b))
        if reach is not None and b <= reach:
            far.append(hole)
        elif hole.tries >= REFILL_TRIES:
            settled.append(hole)
        else:
            ask.append(hole)
    return Plan(tuple(ask), tuple(settled), tuple(far))


def windows(holes: tuple[Hole, ...], timeframe_s: int, page: int) -> list[tuple[datetime, datetime]]:
    """Ranges to request: neighbouring holes share one when it stays within ``page`` candles."""
    out: list[tuple[datetime, datetime]] = []
    most = timedelta(seconds=timeframe_s * page)
    for hole in holes:
        if out and hole.hi - out[-1][0] <= most:
            out[-1] = (out[-1][0], hole.hi)
        else:
            out.append((hole.lo, hole.hi))
    return out


@dataclass(frozen=True, slots=True)
class Refill:
    """What re-asking the holes in the range did: candles stored in them, and what is still missing."""

    timeframe_s: int
    venue: str
    asked: tuple[Hole, ...] = ()
    refilled: int = 0
    still: tuple[Hole, ...] = ()  # the parts of the asked holes still empty, with their re-asks so far
    settled: tuple[Hole, ...] = ()
    out_of_reach: tuple[Hole, ...] = ()

    def lines(self) -> list[str]:
        """Plain lines for the command's output (none when the range had no hole)."""
        tf = self.timeframe_s

        def holes(hs: tuple[Hole, ...]) -> str:
            n = sum(h.candles(tf) for h in hs)
            return f"{len(hs)} gap(s), {n} candle(s), the first from {hs[0].lo:%Y-%m-%d %H:%M} UTC"

        out = []
        if self.asked:
            out.append(f"refill: asked {self.venue} again for {holes(self.asked)}: {self.refilled} candle(s) "
                       "refilled" + ("" if self.still else ", none missing now"))
            done = tuple(h for h in self.still if h.tries >= REFILL_TRIES)
            again = tuple(h for h in self.still if h.tries < REFILL_TRIES)
            if again:
                out.append(f"refill: still missing {holes(again)}; the next download over them asks again "
                           f"(at most {REFILL_TRIES} times)")
            if done:
                out.append(f"refill: still missing {holes(done)}; the venue had none when asked again "
                           f"{REFILL_TRIES} times, so they are not asked for again")
        if self.settled:
            out.append(f"refill: not asked again: {holes(self.settled)}; the venue had none when asked again "
                       f"{REFILL_TRIES} times")
        if self.out_of_reach:
            out.append(f"refill: cannot ask for {holes(self.out_of_reach)}: older than {self.venue} serves")
        return out


def conclude(the_plan: Plan, after: Summary, record: Record, venue: str) -> tuple[Refill, Record]:
    """What the asked holes hold now (``after`` is the file once the run stored everything), and the record
    to keep: each part of an asked hole still empty has one more re-ask that found nothing."""
    tf = after.timeframe_s
    still: list[Hole] = []
    refilled = 0
    asked = _overlaps([(_epoch(h.lo), _epoch(h.hi)) for h in the_plan.ask])
    kept = {k: t for k, t in record.items() if not asked(k)}  # the asked holes' entries are made anew
    for hole in the_plan.ask:
        left = [Hole(a, b, hole.tries + 1) for a, b in after.missing(hole.lo, hole.hi)]
        refilled += hole.candles(tf) - sum(h.candles(tf) for h in left)
        still += left
        kept.update(((_epoch(h.lo), _epoch(h.hi)), h.tries) for h in left)
    # an entry no hole of the file overlaps any more (filled by a later download) goes
    everything = after.missing(datetime.fromtimestamp(0, UTC), datetime.max.replace(tzinfo=UTC))
    open_hole = _overlaps([(_epoch(a), _epoch(b)) for a, b in everything])
    kept = {k: t for k, t in kept.items() if open_hole(k)}
    return Refill(timeframe_s=tf, venue=venue, asked=the_plan.ask, refilled=refilled, still=tuple(still),
                  settled=the_plan.settled, out_of_reach=the_plan.out_of_reach), kept
