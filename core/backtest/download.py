"""Candle history from the venues' public REST endpoints, stored where backtests find it.

``tradectl data download`` calls :func:`download`; ``tradectl backtest``/``tune`` call
:func:`find_candles`. Files live at ``<service.data_dir>/candles/<venue>/<BASE-QUOTE>_<tf>.csv`` in the
strict format :mod:`core.backtest.candlefile` reads (ISO 8601 open times, oldest first, exact decimals).

What each venue gives, honestly:

- **Kraken** (``GET /0/public/OHLC``) serves only the most recent 720 candles of a timeframe, whatever
  ``since`` asks for: 30 days of hourly candles, 12 hours of 1-minute ones. Older history is not
  available from Kraken's API (Kraken sells it as downloadable files). One call per download; run it
  again later and the file grows from where it ends (resumable), so a file kept up to date by a
  regular download has no hole.
- **Coinbase** (``GET /api/v3/brokerage/market/products/{id}/candles``, the public market endpoint that
  needs no key) serves any range, 350 candles per call; the calls go through the Coinbase adapter's
  REST transport and its rate limiter (10 requests/s, the public endpoints' limit). Coinbase leaves out
  intervals without trades, so an illiquid pair has gaps that are not errors.

Only closed candles are stored. A second run continues after the last stored candle (and fetches the
part before the first one when ``since`` asks for it); stored rows are never changed by a later
download. The file is replaced in one rename every :data:`CHECKPOINT_PAGES` pages, at the end, and when
the run stops early (interrupted, or the venue failing), so it is never half-written and keeps every page
fetched after the stored file (a killed process, what the last rename held). Two
downloads of one file take turns writing it, each merging its candles into what the other stored.
A run reads the file's summary (:mod:`core.backtest.candlestore`), not its candles, and writes candles
that only extend it after its bytes as they are.

Gaps are counted over the whole file and reported. A run given ``since`` asks the venue again for the
holes inside its range, at most :data:`~core.backtest.refill.REFILL_TRIES` times each
(:mod:`core.backtest.refill`); what the venue still has no candles for stays a gap: the backtest sees
the market as the venue recorded it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from core.backtest import candlestore, refill
from core.backtest.candlefile import DataError
from core.backtest.candlestore import Gaps, Summary
from core.backtest.refill import Refill
from core.settings.settings_models import TIMEFRAMES
from exchanges.base import Candle
from exchanges.errors import ExchangeError, MalformedResponse, UnknownPair
from persistence.files import locked

VENUES = ("kraken", "coinbase")
KRAKEN_LIMIT = 720  # candles Kraken's OHLC endpoint returns, newest; older ones are out of reach
COINBASE_PAGE = 350  # candles per Coinbase call (its documented maximum)
COINBASE_PUBLIC_RATE = 10.0  # requests per second on Coinbase's public endpoints
DEFAULT_SPAN = timedelta(days=365)  # what a first download asks for without --since
CHECKPOINT_PAGES = 20  # the file is rewritten every this many pages, so an interrupted run keeps its work

Progress = Callable[[int, datetime], None]  # (candles so far, the newest open time fetched)


class CandleSource(Protocol):
    """One venue's public candle history: closed candles with open times in ``[start, end)``."""

    name: str
    timeframes_s: tuple[int, ...]  # the timeframes the venue serves, in seconds

    def pages(self, pair: str, timeframe_s: int, start: datetime, end: datetime) -> AsyncIterator[list[Candle]]:
        """The candles page by page, as the venue serves them."""
        ...

    async def venue_now(self) -> datetime:
        """The venue's clock less its close grace: a candle counts as closed only by it, not by this host's."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Stored:
    """A candle file on disk and what it holds."""

    path: Path
    venue: str
    pair: str
    timeframe: str
    rows: int
    first: datetime | None
    last: datetime | None
    gaps: Gaps


@dataclass(frozen=True, slots=True)
class Downloaded:
    stored: Stored
    added: int
    requested: tuple[datetime, datetime]
    notes: tuple[str, ...] = ()
    refill: Refill | None = None  # the holes in the range asked for again, when --since was given


def timeframe_seconds(timeframe: str) -> int:
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}")
    return TIMEFRAMES[timeframe]


def _pair_file(pair: str) -> str:
    # ASCII letters and digits only: str.upper() turns some other letters into different ones ('ß' into
    # 'SS'), which would download another pair than the one typed
    if not pair.isascii():
        raise ValueError(f"pair {pair!r}: write BASE/QUOTE in ASCII letters and digits, e.g. BTC/USD")
    base, sep, quote = pair.upper().partition("/")
    if not (sep and base.isalnum() and quote.isalnum()):
        raise ValueError(f"pair {pair!r}: write BASE/QUOTE, e.g. BTC/USD")
    return f"{base}-{quote}"


def candle_path(data_dir: Path, venue: str, pair: str, timeframe: str) -> Path:
    return data_dir / "candles" / venue / f"{_pair_file(pair)}_{timeframe}.csv"


def _describe(path: Path, venue: str, pair: str, timeframe: str, summary: Summary | None) -> Stored:
    if summary is None:
        return Stored(path=path, venue=venue, pair=pair, timeframe=timeframe, rows=0, first=None, last=None,
                      gaps=Gaps())
    return Stored(path=path, venue=venue, pair=pair, timeframe=timeframe, rows=summary.rows, first=summary.first,
                  last=summary.last, gaps=summary.gaps)


def _invalid(candle: Candle, timeframe_s: int) -> str | None:
    """Why the venue's candle cannot be stored (the strict reader would refuse the file, or the backtest
    its time), or None. Such a candle is left out and counts as a gap, said in a note: storing it would
    make the whole file unreadable, and refusing the download would stop every later run at it."""
    if int(candle.ts.timestamp()) % timeframe_s or candle.ts.microsecond:
        return "not on the timeframe's grid"
    values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
    if not all(v.is_finite() for v in values):
        return "a value is not finite"
    if min(values[:4]) <= 0:
        return "a price is not positive"
    if candle.volume < 0:
        return "negative volume"
    if not (candle.low <= candle.open <= candle.high and candle.low <= candle.close <= candle.high):
        return f"open {candle.open}, high {candle.high}, low {candle.low}, close {candle.close} do not fit"
    return None


def _check_writable(path: Path) -> None:
    """Refuse before any download when the file could not be written (without creating anything)."""
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise DataError(f"cannot store candles under {path.parent}: {folder} is not a directory")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise DataError(f"cannot store candles under {path.parent}: {folder} is not writable")
            return


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _floor(moment: datetime, timeframe_s: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % timeframe_s, UTC)


def _ceil(moment: datetime, timeframe_s: int) -> datetime:
    floor = _floor(moment, timeframe_s)
    return floor if floor == moment else floor + timedelta(seconds=timeframe_s)


async def download(source: CandleSource, data_dir: Path, pair: str, timeframe: str, *,
                   since: datetime | None = None, until: datetime | None = None, now: datetime | None = None,
                   progress: Progress | None = None, checkpoint_pages: int = CHECKPOINT_PAGES) -> Downloaded:
    """Fetch what the file lacks in ``[since, until)`` and store the merged series.

    Without ``since`` a new file starts :data:`DEFAULT_SPAN` back and an existing one continues after its
    last candle. With it, the holes the file has inside the range are asked for again (:mod:`.refill`).
    ``until`` defaults to the running candle's open (only closed candles are stored).
    """
    tf_s = timeframe_seconds(timeframe)
    if tf_s not in source.timeframes_s:
        served = ", ".join(n for n, s in TIMEFRAMES.items() if s in source.timeframes_s)
        raise ValueError(f"timeframe {timeframe!r}: {source.name} has no such candles; it serves {served}")
    _pair_file(pair)  # refuses a spelling before it is upper-cased into another pair
    pair = pair.upper()
    path = candle_path(data_dir, source.name, pair, timeframe)
    seen = _signature(path)  # the file as this run last saw or wrote it (taken first: a change after it shows)
    summary = candlestore.load(path, pair, tf_s)  # DataError names the line if it was edited badly
    _check_writable(path)
    if now is None:  # a host clock running ahead (a Raspberry Pi has no battery clock) must not store a running candle
        now = min(datetime.now(UTC), await source.venue_now())
    current = _floor(now, tf_s)  # the running candle's open: only closed ones before it
    if since is not None and since >= current:
        raise ValueError(f"since {since:%Y-%m-%d %H:%M} UTC: no closed candle starts there yet (the running "
                         f"{timeframe} candle opened at {current:%Y-%m-%d %H:%M} UTC)")
    # every candle that opens before --until: up to the grid line at or after it (the venues page by open time)
    end = min(_ceil(until, tf_s), current) if until is not None else current
    start = _floor(since, tf_s) if since is not None else None
    span = timedelta(seconds=tf_s)
    reach = current - span * KRAKEN_LIMIT
    ranges: list[tuple[datetime, datetime]] = []
    refills = refill.Plan()
    record: refill.Record = {}
    notes: list[str] = []
    if summary is None or summary.first is None or summary.last is None:
        ranges.append((start or _floor(end - DEFAULT_SPAN, tf_s), end))
    else:
        if start is not None and start < summary.first:
            ranges.append((start, summary.first))
        if start is not None:  # the holes inside the asked range, a bounded number of times each
            record = refill.load_record(path)
            refills = refill.plan(summary, start, end, record, reach if source.name == "kraken" else None)
            per_call = KRAKEN_LIMIT if source.name == "kraken" else COINBASE_PAGE
            ranges += refill.windows(refills.ask, tf_s, per_call)
        # always from right after the file, even when --since is later: a file is one series, and a hole left
        # between its end and --since could never be filled (a later run continues after the last candle)
        ranges.append((summary.last + span, end))
        if start is not None and start > summary.last + span and start < end:
            notes.append(f"the stored file ends at {summary.last:%Y-%m-%d %H:%M} UTC: continued from there rather "
                         f"than from {start:%Y-%m-%d %H:%M}, so that it has no hole")
    before = summary is not None and summary.first is not None and start is not None and start < summary.first

    pending: dict[datetime, Candle] = {}  # fetched, not yet stored
    fetched: set[datetime] = set()
    refused: list[tuple[Candle, str]] = []
    added = 0

    def stored(ts: datetime) -> bool:
        return summary is not None and summary.has(ts)

    def save() -> None:
        nonlocal summary, seen, added
        if _signature(path) != seen:  # another download wrote the file since: describe it as it is now
            seen = _signature(path)
            summary = candlestore.load(path, pair, tf_s)
        for ts in [ts for ts in pending if stored(ts)]:
            del pending[ts]
        if not pending:
            return
        try:
            with locked(path):  # two downloads of one file (a scheduled one and one by hand) merge in turn
                if _signature(path) != seen:  # another download wrote the file since: keep its rows
                    summary = candlestore.load(path, pair, tf_s)  # (write() checks its digest again)
                new = sorted((c for ts, c in pending.items() if not stored(ts)), key=lambda c: c.ts)
                if new:
                    summary, n = candlestore.write(path, summary, new, pair, tf_s)
                    added += n
                pending.clear()
                seen = _signature(path)
        except OSError as exc:
            raise DataError(f"cannot write {path}: {exc.strerror or exc}; the file was left as it was") from exc

    count = pages = 0
    keep = False  # the range fetched may be stored as it is: after the file, or in its holes, not before it
    try:
        for index, (lo, hi) in enumerate(ranges):
            keep = not (before and index == 0)
            forward = index == len(ranges) - 1
            refilling = keep and not forward  # a window over holes inside the file
            if lo >= hi:
                continue
            earliest: datetime | None = None
            async for page in source.pages(pair, tf_s, lo, hi):
                got = []
                for c in page:
                    if not lo <= c.ts < hi:
                        continue
                    why = _invalid(c, tf_s)
                    if why is None:
                        got.append(c)
                    else:
                        refused.append((c, why))
                got.sort(key=lambda c: c.ts)
                fetched.update(c.ts for c in got)
                pending.update((c.ts, c) for c in got if not stored(c.ts))
                if got:
                    earliest = min(earliest or got[0].ts, got[0].ts)
                    count += len(got)
                    if progress is not None:
                        progress(count, got[-1].ts)
                pages += 1
                if forward and pages % checkpoint_pages == 0:
                    # an interrupted download keeps what it fetched and the next run continues after it; only
                    # forward, where what is kept joins the file (a part before it would leave a hole)
                    save()
            if source.name == "kraken" and lo < reach and not refilling:
                what = f"got from {earliest:%Y-%m-%d %H:%M} UTC" if earliest else "got nothing"
                notes.append(f"Kraken serves only its most recent {KRAKEN_LIMIT} candles: asked from "
                             f"{lo:%Y-%m-%d %H:%M}, {what}. Older history is not available from Kraken's API; "
                             "use --venue coinbase for it, and run this download regularly to keep the file growing.")
    except BaseException:
        if keep:  # the venue failed or the run was interrupted: keep every page fetched, as a checkpoint would
            save()
        raise
    save()
    done = None
    if start is not None and summary is not None and (refills.ask or refills.settled or refills.out_of_reach):
        done, record = refill.conclude(refills, summary, record, source.name)
        refill.save_record(path, record)
    bad = {c.ts: why for c, why in refused if c.ts not in fetched and not stored(c.ts)}
    if bad:
        at, why = min(bad.items())
        notes.append(f"{source.name} sent {len(bad)} candle(s) that cannot be stored, left out (a hole they leave "
                     f"is counted in the gaps); the first at {at:%Y-%m-%d %H:%M:%S} UTC: {why}")
    requested = (ranges[0][0], end)
    if summary is None or not summary.rows:
        notes.append("the venue returned no candles in that range; nothing stored")
    return Downloaded(stored=_describe(path, source.name, pair, timeframe, summary), added=added,
                      requested=requested, notes=tuple(notes), refill=done)


def _parse_name(path: Path) -> tuple[str, str] | None:
    stem, sep, timeframe = path.stem.rpartition("_")
    base, dash, quote = stem.partition("-")
    if not (sep and dash and timeframe in TIMEFRAMES and base and quote):
        return None
    return f"{base}/{quote}", timeframe


def stored_files(data_dir: Path) -> list[Path]:
    root = data_dir / "candles"
    return sorted(p for p in root.glob("*/*.csv") if _parse_name(p) is not None) if root.is_dir() else []


def describe_file(path: Path) -> Stored:
    """What a stored file holds (DataError if it no longer reads as a candle file)."""
    parsed = _parse_name(path)
    if parsed is None:
        raise ValueError(f"{path}: not a downloaded candle file name (BASE-QUOTE_tf.csv)")
    pair, timeframe = parsed
    return _describe(path, path.parent.name, pair, timeframe, candlestore.load(path, pair, TIMEFRAMES[timeframe]))


@dataclass(frozen=True, slots=True)
class Found:
    path: Path
    venue: str
    others: tuple[str, ...]  # venues that also have this pair and timeframe

    def describe(self) -> str:
        also = f"; also stored from {', '.join(self.others)} (pass --csv to pick one)" if self.others else ""
        return f"candles: {self.path} (downloaded from {self.venue}{also})"


def find_candles(data_dir: Path, pair: str, timeframe: str, prefer: str | None = None) -> Found | None:
    """The downloaded file for ``pair``/``timeframe``: ``prefer``'s (the configured venue) if it has one,
    else the venue whose file was written last. None when nothing is stored."""
    try:
        name = f"{_pair_file(pair)}_{timeframe}.csv"
    except ValueError:
        return None
    root = data_dir / "candles"
    hits = [p for p in root.glob(f"*/{name}")] if root.is_dir() else []
    if not hits:
        return None
    hits.sort(key=lambda p: (p.parent.name != prefer, -p.stat().st_mtime, p.parent.name))
    return Found(path=hits[0], venue=hits[0].parent.name, others=tuple(p.parent.name for p in hits[1:]))


class KrakenSource:
    """Kraken's public OHLC through :class:`~exchanges.kraken.adapter.KrakenExchange` (no key needed)."""

    name = "kraken"

    def __init__(self, rest_url: str | None = None) -> None:
        from exchanges.kraken.adapter import DEFAULT_REST_URL, KrakenExchange

        self.venue = KrakenExchange(rest_url=rest_url or DEFAULT_REST_URL)
        self.timeframes_s = KrakenExchange.capabilities.timeframes_s

    async def pages(self, pair: str, timeframe_s: int, start: datetime, end: datetime) -> AsyncIterator[list[Candle]]:
        await self.venue.start()
        rows = await self.venue.candles(pair, timeframe_s, since=start, limit=KRAKEN_LIMIT)  # one page is all
        yield [c for c in rows if start <= c.ts < end]

    async def venue_now(self) -> datetime:
        from exchanges.kraken.preflight import venue_time

        return await _closed_by(self.name, self.venue.rest, venue_time, self.venue.close_grace_s)

    async def close(self) -> None:
        await self.venue.stop()


class CoinbaseSource:
    """Coinbase's public market candles through the Coinbase adapter's REST transport and limiter."""

    name = "coinbase"

    def __init__(self, rest_url: str | None = None, rate_per_s: float = COINBASE_PUBLIC_RATE) -> None:
        from exchanges.coinbase.adapter import DEFAULT_REST_URL, CoinbaseExchange

        self.venue = CoinbaseExchange(rest_url=rest_url or DEFAULT_REST_URL, rate_per_s=rate_per_s)
        self.timeframes_s = CoinbaseExchange.capabilities.timeframes_s

    async def pages(self, pair: str, timeframe_s: int, start: datetime, end: datetime) -> AsyncIterator[list[Candle]]:
        from exchanges.coinbase import parse
        from exchanges.coinbase.symbols import to_product_id

        rest = self.venue.rest
        await rest.open()
        span = timedelta(seconds=timeframe_s)
        lo = start
        while lo < end:
            hi = min(lo + span * COINBASE_PAGE, end)
            params = self.venue.candle_params(timeframe_s, lo, hi - span)  # ExchangeError for a timeframe it lacks
            payload = await rest.request("GET", f"/market/products/{to_product_id(pair)}/candles", params=params,
                                         retry=True, auth=False, not_found=UnknownPair)
            yield [c for c in parse.parse_candles(payload, pair, timeframe_s) if lo <= c.ts < hi]
            lo = hi

    async def venue_now(self) -> datetime:
        from exchanges.coinbase.preflight import venue_time

        return await _closed_by(self.name, self.venue.rest, venue_time, self.venue.close_grace_s)

    async def close(self) -> None:
        await self.venue.rest.close()


async def _closed_by(name: str, rest: Any, venue_time: Callable[[Any], Awaitable[datetime]],
                     grace_s: float) -> datetime:
    """The venue's clock (its public time endpoint) less the adapter's close grace: candles opening before
    this minus a timeframe are closed."""
    await rest.open()
    try:
        now = await venue_time(rest)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedResponse(f"{name} time: the reply has no time in it ({exc!r})") from exc
    return now - timedelta(seconds=grace_s)


def make_source(venue: str, rest_url: str | None = None) -> CandleSource:
    if venue == "kraken":
        return KrakenSource(rest_url)
    if venue == "coinbase":
        return CoinbaseSource(rest_url)
    raise ExchangeError(f"venue {venue!r}: candles download from {' or '.join(VENUES)}")
