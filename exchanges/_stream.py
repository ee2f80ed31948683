"""Reconnecting WebSocket feeds shared by the live adapters.

:func:`run_feed` owns one connection at a time: it connects, lets the venue session subscribe,
reads with an idle timeout (venues send heartbeats, so silence means a dead link), and on any
failure reports ``FeedStatus(connected=False)``, backs off, reconnects, resubscribes and asks the
session to fill the gap from REST before live messages resume. It is an async generator driven
by its consumer, so there is no background task to own: closing the iterator closes the socket.
The waits between reconnects follow the same :class:`~exchanges.retry.Backoff` as every retry, but
the loop is not tenacity's: it never gives up, starts again from the shortest wait after each
successful connection, and yields events between attempts, and tenacity's ``with attempt:`` would
swallow the ``GeneratorExit``/``CancelledError`` that closing or cancelling the iterator raises there.

:class:`CandleCloser` turns the venues' running-candle updates into closed candles, each emitted
once and in order per pair, whatever mix of snapshot, live update and REST gap fill supplies them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from exchanges.base import Candle, FeedStatus, MarketEvent
from exchanges.clock import Clock
from exchanges.errors import MalformedResponse, TemporaryError
from exchanges.retry import Backoff, Sleep

log = logging.getLogger(__name__)


class CandleCloser:
    """Running candles in, closed candles out: once each, ascending per pair.

    A candle counts as closed when a later one for the same pair arrives, or when the clock has
    passed its end by ``grace_s`` (quiet markets send no next candle). Anything at or before the
    last emitted open time is a duplicate and dropped.
    """

    def __init__(self, timeframe_s: int, clock: Clock, grace_s: float = 2.0) -> None:
        self.timeframe = timedelta(seconds=timeframe_s)
        self.grace = timedelta(seconds=grace_s)
        self.clock = clock
        self._pending: dict[str, Candle] = {}
        self._last: dict[str, datetime] = {}

    def last_closed(self, pair: str) -> datetime | None:
        return self._last.get(pair)

    def update(self, candle: Candle) -> list[Candle]:
        """Take one candle (running or final); return the candles this closes, oldest first."""
        last = self._last.get(candle.pair)
        if last is not None and candle.ts <= last:
            return []
        out: list[Candle] = []
        pending = self._pending.get(candle.pair)
        if pending is not None and pending.ts < candle.ts:
            out.append(self._emit(pending))
        elif pending is not None and pending.ts > candle.ts:
            return []  # an older update behind the running candle: already superseded
        if self._is_over(candle, self.clock.now()):
            self._pending.pop(candle.pair, None)
            out.append(self._emit(candle))
        else:
            self._pending[candle.pair] = candle
        return out

    def update_many(self, candles: Iterable[Candle]) -> list[Candle]:
        out: list[Candle] = []
        for candle in sorted(candles, key=lambda c: (c.pair, c.ts)):
            out.extend(self.update(candle))
        return out

    def tick(self) -> list[Candle]:
        """Close running candles whose period ended (called on every message and heartbeat)."""
        now = self.clock.now()
        due = [c for c in self._pending.values() if self._is_over(c, now)]
        for candle in due:
            del self._pending[candle.pair]
        return [self._emit(c) for c in sorted(due, key=lambda c: (c.ts, c.pair))]

    def drop_running(self) -> None:
        """Forget running candles (after a disconnect the REST gap fill supplies their final form)."""
        self._pending.clear()

    def forget(self, pair: str) -> None:
        """Forget ``pair``'s running candle (its stream was unsubscribed). Its last closed time stays, so a
        pair subscribed again never emits a candle twice."""
        self._pending.pop(pair, None)

    def _is_over(self, candle: Candle, now: datetime) -> bool:
        return now >= candle.ts + self.timeframe + self.grace

    def _emit(self, candle: Candle) -> Candle:
        self._last[candle.pair] = candle.ts
        return candle


class FeedSession(Protocol):
    """What a venue supplies to :func:`run_feed` for one kind of stream."""

    name: str

    async def url(self) -> str: ...
    async def on_open(self, ws: ClientConnection) -> None: ...
    async def on_message(self, raw: str | bytes) -> Sequence[Any]: ...
    async def on_tick(self) -> Sequence[Any]: ...
    def on_disconnect(self) -> None: ...
    async def resync(self) -> Sequence[Any]: ...


class PairSession(FeedSession, Protocol):
    """A market-data session whose pairs can change on the open connection (``/pairs add``/``remove``).

    ``add`` puts the pair in the session's set and, when connected, sends the venue's subscribe
    messages on the connection; ``remove`` does the reverse. A send that fails (the link is going down)
    is no error: :meth:`FeedSession.on_open` subscribes the current set on the next connection."""

    async def add(self, pair: str) -> None: ...
    async def remove(self, pair: str) -> None: ...


class StreamFeed(AsyncIterator[MarketEvent]):
    """:func:`run_feed` over one :class:`PairSession`, as an object: iterate it for the events, and
    :meth:`add`/:meth:`remove` pairs while it runs (:class:`~exchanges.base.PairSubscriptions`).

    The session is built on first use (``build`` may read the venue's symbols over REST), so the feed
    can be handed out synchronously. ``add`` returns no history: the caller back-fills from REST.
    """

    def __init__(self, build: Callable[[], Awaitable[PairSession]], **run_options: Any) -> None:
        self._build = build
        self._options = run_options
        self._session: PairSession | None = None
        self._building = asyncio.Lock()
        self._events: AsyncIterator[Any] | None = None
        self._closed = False

    async def session(self) -> PairSession:
        async with self._building:
            if self._session is None:
                self._session = await self._build()
            return self._session

    def __aiter__(self) -> StreamFeed:
        return self

    async def __anext__(self) -> MarketEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._events is None:
            self._events = run_feed(await self.session(), **self._options)
        event: MarketEvent = await self._events.__anext__()
        return event

    async def aclose(self) -> None:
        """Close the connection now (the iterator ends)."""
        events, self._events, self._closed = self._events, None, True
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def add(self, pair: str) -> Sequence[Candle]:
        await (await self.session()).add(pair)
        return ()

    async def remove(self, pair: str) -> None:
        await (await self.session()).remove(pair)


async def send_quietly(ws: ClientConnection | None, name: str, *messages: str) -> None:
    """Send ``messages`` on ``ws`` when there is one; a link going down is left to the reconnect."""
    if ws is None:
        return
    try:
        for message in messages:
            await ws.send(message)
    except (OSError, WebSocketException) as exc:
        log.info("%s: not sent now (%s); the next connection subscribes the current pairs", name, exc)


_CONNECTION_ERRORS = (OSError, TimeoutError, WebSocketException, InvalidHandshake, InvalidURI, TemporaryError)


async def run_feed(
    session: FeedSession,
    *,
    clock: Clock,
    backoff: Backoff,
    idle_timeout_s: float,
    open_timeout_s: float = 10.0,
    ping_interval_s: float | None = 20.0,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[Any]:
    """Yield the session's events forever, reconnecting as needed (see the module docstring).

    Errors that are not transient (bad credentials, unknown pair in a subscription) end the
    iteration by raising; malformed single messages are logged and skipped.
    """
    attempt = 0
    ever_connected = False
    connected = False
    down_since: datetime | None = None
    while True:
        try:
            url = await session.url()
            async with connect(url, open_timeout=open_timeout_s, ping_interval=ping_interval_s,
                               close_timeout=2, max_size=2**23) as ws:
                await session.on_open(ws)
                gap = await session.resync() if ever_connected else ()
                detail = "connected" if not ever_connected else _reconnected_detail(down_since, clock, len(gap))
                ever_connected, connected, attempt, down_since = True, True, 0, None
                log.info("%s: %s", session.name, detail)
                yield FeedStatus(connected=True, detail=detail, ts=clock.now())
                for event in gap:
                    yield event
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=idle_timeout_s)
                    except TimeoutError as exc:
                        raise TemporaryError(f"no message for {idle_timeout_s:g}s") from exc
                    try:
                        events = await session.on_message(raw)
                    except MalformedResponse as exc:
                        log.warning("%s: skipped a malformed message: %s", session.name, exc)
                        events = ()
                    for event in events:
                        yield event
                    for event in await session.on_tick():
                        yield event
        except _CONNECTION_ERRORS as exc:
            reason = _describe(exc)
            session.on_disconnect()
            if connected or (not ever_connected and attempt == 0):
                down_since = clock.now()
                log.warning("%s: disconnected: %s", session.name, reason)
                yield FeedStatus(connected=False, detail=f"disconnected: {reason}", ts=down_since)
            connected = False
            delay = backoff.delay(attempt)
            attempt += 1
            log.info("%s: reconnecting in %.2fs (attempt %d)", session.name, delay, attempt)
            await sleep(delay)


def _reconnected_detail(down_since: datetime | None, clock: Clock, filled: int) -> str:
    gap = f"; gap-filled {filled} event(s) from REST" if filled else ""
    if down_since is None:
        return f"reconnected{gap}"
    return f"reconnected after {(clock.now() - down_since).total_seconds():.1f}s{gap}"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."
