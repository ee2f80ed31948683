"""Market data and the account's events for a ccxt venue.

- :func:`watch_market` (WebSocket, ``ccxt.pro``): one named task per pair and stream,
  ``watch_ohlcv`` for candles and ``watch_ticker`` for tickers. ccxt.pro hands back candles with the
  running one included; a candle is emitted, in its last seen state, once a later one has begun.
  ccxt.pro reconnects when a watch call is made again: the first failing call is reported as
  ``FeedStatus(connected=False)``, calls are retried after :data:`~exchanges.retry.WS_RECONNECT`, and
  the first one that succeeds again yields ``FeedStatus(connected=True)``; the candles that closed in
  between are then fetched over REST and yielded first, so none is missed (ccxt.pro's own snapshot
  on resubscribing covers only the last few).
- :func:`poll_market` (REST) when the exchange has no ``watchOHLCV`` or streams are off
  (``ccxt.websocket = false``): every ``poll_interval_s`` it asks each pair's ticker and last candles
  and yields the ticker and each newly closed candle. A failed round yields ``FeedStatus(False)``; the
  first good one after it ``FeedStatus(True)``. Latency is up to one interval, and every round costs
  two requests per pair against the exchange's rate limit, so keep the interval at seconds, not less.
- :func:`poll_private`: the account's fills, polled through ``fills_since`` (no ccxt venue's private
  stream is used: ccxt.pro's ``watch_my_trades`` differs too much between exchanges to rely on).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime

from exchanges.base import Candle, FeedStatus, MarketEvent, PrivateEvent, Ticker
from exchanges.ccxt import convert
from exchanges.ccxt._venue import CcxtVenue
from exchanges.ccxt.errors import call
from exchanges.errors import ExchangeError, TemporaryError
from exchanges.retry import WS_RECONNECT


class _PairFeed(AsyncIterator[MarketEvent]):
    """An endless event source whose pairs change while it runs (:class:`~exchanges.base.PairSubscriptions`):
    ``add`` checks the pair against the venue's markets (UnknownPair, nothing changed), ``remove`` stops
    it and drops its events still queued. ``add`` returns no history: the caller back-fills from REST."""

    def __init__(self, venue: CcxtVenue, pairs: list[str], timeframe_s: int) -> None:
        self.venue, self.timeframe_s = venue, timeframe_s
        self.pairs: list[str] = list(dict.fromkeys(pairs))
        self._events = self._run()

    def __aiter__(self) -> _PairFeed:
        return self

    async def __anext__(self) -> MarketEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def add(self, pair: str) -> Sequence[Candle]:
        if pair in self.pairs:
            return ()
        market = await self.venue.market(pair)
        self.pairs.append(pair)
        self.venue.traded_pairs.add(pair)
        self._started(pair, market.venue_symbol)
        return ()

    async def remove(self, pair: str) -> None:
        if pair in self.pairs:
            self.pairs.remove(pair)
            await self._stopped(pair)

    def _streamed(self, event: MarketEvent) -> bool:
        return not isinstance(event, (Candle, Ticker)) or event.pair in self.pairs

    def _run(self) -> AsyncGenerator[MarketEvent, None]:
        raise NotImplementedError

    def _started(self, pair: str, venue_symbol: str) -> None:
        raise NotImplementedError

    async def _stopped(self, pair: str) -> None:
        raise NotImplementedError


class _PollFeed(_PairFeed):
    def __init__(self, venue: CcxtVenue, pairs: list[str], timeframe_s: int) -> None:
        super().__init__(venue, pairs, timeframe_s)
        self._last: dict[str, datetime] = {}

    def _started(self, pair: str, venue_symbol: str) -> None:
        pass  # the next round asks for it

    async def _stopped(self, pair: str) -> None:
        self._last.pop(pair, None)

    async def _run(self) -> AsyncGenerator[MarketEvent, None]:
        venue, timeframe_s, last = self.venue, self.timeframe_s, self._last
        venue.timeframe(timeframe_s)  # refuses an unknown timeframe before the first round
        connected: bool | None = None
        while True:
            events: list[MarketEvent] = []
            try:
                for pair in list(self.pairs):
                    events.append(await venue.ticker(pair))
                    closed = await venue.candles(pair, timeframe_s, limit=3)
                    seen = last.get(pair)
                    # the first round yields only the newest closed candle: history is the engine's back-fill
                    events += closed[-1:] if seen is None else [c for c in closed if c.ts > seen]
                    if closed:
                        last[pair] = max(closed[-1].ts, seen or closed[-1].ts)
            except TemporaryError as exc:
                if connected is not False:
                    connected = False
                    yield FeedStatus(False, f"{venue.name} polling failed: {exc}", venue.clock.now())
            else:
                if connected is not True:
                    connected = True
                    yield FeedStatus(True, f"{venue.name} polling REST every {venue.poll_interval_s:g}s",
                                     venue.clock.now())
                for event in events:
                    if self._streamed(event):
                        yield event
            await venue.sleep(venue.poll_interval_s)


def poll_market(venue: CcxtVenue, pairs: list[str], timeframe_s: int) -> _PairFeed:
    return _PollFeed(venue, pairs, timeframe_s)


class _WatchFeed(_PairFeed):
    """One named task per pair and stream (see the module docstring); adding a pair starts its tasks,
    removing one cancels them (ccxt.pro's kraken has no ``unWatch*``, so the exchange may keep sending
    that symbol on the shared connection: ccxt.pro caches it and nothing reads it)."""

    def __init__(self, venue: CcxtVenue, pairs: list[str], timeframe_s: int) -> None:
        super().__init__(venue, pairs, timeframe_s)
        self._queue: asyncio.Queue[MarketEvent] = asyncio.Queue(maxsize=1000)
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._running = False
        # one state for all watchers: ccxt.pro multiplexes them on one connection per URL, so the first
        # failure means the feed is down and the first success after it means it is back
        self._up = True

    def _started(self, pair: str, venue_symbol: str) -> None:
        if self._running:  # before the first event, _run starts every pair's tasks
            self._spawn(pair, venue_symbol)

    async def _stopped(self, pair: str) -> None:
        tasks = self._tasks.pop(pair, [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, pair: str, symbol: str) -> None:
        name = self.venue.name
        tasks = [asyncio.create_task(self._candles(pair, symbol), name=f"{name}:candles:{pair}")]
        if self.venue.ex.has.get("watchTicker"):
            tasks.append(asyncio.create_task(self._tickers(pair, symbol), name=f"{name}:ticker:{pair}"))
        self._tasks[pair] = tasks

    async def _guarded(self, what: str, once: Callable[[], Awaitable[None]]) -> None:
        venue, queue = self.venue, self._queue
        failures = 0
        while True:
            try:
                await once()
                failures = 0
                if not self._up:
                    self._up = True
                    await queue.put(FeedStatus(True, f"{venue.name} streaming again ({what})", venue.clock.now()))
            except ExchangeError as exc:
                if self._up:
                    self._up = False
                    await queue.put(FeedStatus(False, f"{venue.name} {what}: {exc}", venue.clock.now()))
                await venue.sleep(WS_RECONNECT.delay(failures))
                failures += 1

    async def _candles(self, pair: str, symbol: str) -> None:
        venue, queue, timeframe_s = self.venue, self._queue, self.timeframe_s
        tf = venue.timeframe(timeframe_s)
        emitted: datetime | None = None   # newest candle already yielded
        running: Candle | None = None     # the candle still open, as last seen
        gap = False                       # a watch call failed: candles may have been missed

        async def once() -> None:
            nonlocal emitted, running, gap
            try:
                # ccxt.pro returns either its whole cache or only what changed (newUpdates): either way each
                # row is the newest state of its candle, and a candle is closed once a later one has begun
                rows = await call(venue.ex.watch_ohlcv(symbol, tf), venue.ex)
                if gap and emitted is not None:  # back after a failure: what closed meanwhile, from REST
                    for c in await venue.candles(pair, timeframe_s, since=emitted):
                        if c.ts > emitted:
                            await queue.put(c)
                            emitted = c.ts
                    if running is not None and running.ts <= emitted:
                        running = None
            except ExchangeError:
                gap = True
                raise
            gap = False
            for c in sorted((convert.candle(pair, timeframe_s, r) for r in rows), key=lambda c: c.ts):
                if emitted is not None and c.ts <= emitted:
                    continue
                if running is not None and c.ts > running.ts:
                    await queue.put(running)
                    emitted = running.ts
                if running is None or c.ts >= running.ts:
                    running = c

        await self._guarded(f"candles {pair}", once)

    async def _tickers(self, pair: str, symbol: str) -> None:
        venue = self.venue

        async def once() -> None:
            raw = await call(venue.ex.watch_ticker(symbol), venue.ex)
            await self._queue.put(convert.ticker(pair, raw, venue.clock.now()))

        await self._guarded(f"ticker {pair}", once)

    async def _run(self) -> AsyncGenerator[MarketEvent, None]:
        venue = self.venue
        venue.timeframe(self.timeframe_s)
        for pair in list(self.pairs):
            self._spawn(pair, (await venue.market(pair)).venue_symbol)
        self._running = True
        getter: asyncio.Task[MarketEvent] | None = None
        try:
            yield FeedStatus(True, f"{venue.name} streaming over WebSocket (ccxt.pro)", venue.clock.now())
            while True:
                if getter is None:
                    getter = asyncio.create_task(self._queue.get(), name=f"{venue.name}:next")
                await asyncio.wait([getter, *self._all()], return_when=asyncio.FIRST_COMPLETED)
                for task in self._all():  # a watcher ends only by dying of something unexpected: surfaced
                    if task.done():
                        getter.cancel()
                        task.result()
                        raise RuntimeError(f"{task.get_name()} stopped")
                if not getter.done():
                    continue  # a removed pair's watchers were cancelled
                event, getter = getter.result(), None
                if self._streamed(event):
                    yield event
        finally:
            self._running = False
            if getter is not None:
                getter.cancel()
            tasks = self._all()
            self._tasks.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _all(self) -> list[asyncio.Task[None]]:
        return [task for tasks in self._tasks.values() for task in tasks]


def watch_market(venue: CcxtVenue, pairs: list[str], timeframe_s: int) -> _PairFeed:
    return _WatchFeed(venue, pairs, timeframe_s)


async def poll_private(venue: CcxtVenue) -> AsyncIterator[PrivateEvent]:
    cursor: str | None = None
    primed = False
    connected: bool | None = None
    while True:
        try:
            page = await venue.fills_since(cursor)
        except TemporaryError as exc:
            if connected is not False:
                connected = False
                yield FeedStatus(False, f"{venue.name} account polling failed: {exc}", venue.clock.now())
        else:
            if connected is not True:
                connected = True
                yield FeedStatus(True, f"{venue.name} account polled every {venue.poll_interval_s:g}s",
                                 venue.clock.now())
            if primed:  # the first page is history the service reconciles by itself
                for fill in page.fills:
                    yield fill
            primed, cursor = True, page.cursor
        await venue.sleep(venue.poll_interval_s)
