"""The traded pairs, changed while the engine runs (``/pairs add`` and ``/pairs remove`` from chat).

The engine owns one :class:`PairManager`; intents reach it through :meth:`Engine.submit
<core.trading.engine.Engine.submit>`, so a command never touches the pair set itself. What a change
does, in order:

- **add**: the pair is checked (written BASE/QUOTE, not traded yet, listed by the venue -- or, on a venue
  that opens any market it is given (paper, :class:`~exchanges.base.OpenMarkets`), listed by the venue
  the feed comes from (:class:`FeedListing`: paper on a live feed) or supplied by the feed (replay)); the
  feed subscribes (:class:`~exchanges.base.PairSubscriptions`) and hands back the history it has
  (replay's candles; paper on a live feed: the live venue's recent candles, with the paper venue given
  that venue's real rules for the pair); without history the venue's candles back-fill it
  (``exchange.candles``: live mode, over REST). The market data holds
  that history before the pair's first candle goes through: until then the feed waits at the pair's
  gate, so the first strategy scan sees a full window. Then the overlay is written, the engine's
  :class:`~core.trading.traded.TradedPairs` changes (every part of the engine reads the pairs there) and a
  ``pairs_changed`` alert goes out. Any failure on the way undoes what was done.
- **remove**: without a position the pair is dropped at once (the feed unsubscribes, its candles are
  ignored from then). With one, the caller chooses: ``close`` sells it at market and drops the pair once
  it is closed; ``keep`` stops new entries and keeps managing its stops and exits, and the pair is
  dropped when the position closes. Until then the pair is *closing*: stored in the overlay, so a
  restart keeps managing it without opening anything new.

The overlay (:func:`core.settings.overlay.write_pairs_overlay`) is what a restart reads; the engine
writes it only when it was given a path (the service does, tests and backtests may not).

The replay feed and the live feeds (Kraken, Coinbase, ccxt: :class:`~exchanges._stream.StreamFeed` and
:mod:`exchanges.ccxt.streams`) subscribe while running. A feed without
:class:`~exchanges.base.PairSubscriptions` (a venue of one's own) cannot: the pair is saved in the overlay
and traded after a restart, and the reply says so. Removing works on every feed (its candles are ignored).

Not done: live mode runs no preflight for an added pair (the minimum-order check ``tradectl check --live``
makes at start); its first order meets the venue's own checks.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.settings.config import Settings, setting_origin
from core.settings.overlay import PAIRS_FILE, PairsOverlay, read_pairs_overlay, write_pairs_overlay
from core.trading.events import EventBus, PairsChanged
from core.trading.executor import Executor
from core.trading.exits import Exits
from core.trading.intents import AddPair, EntriesStop, IntentResult, ListPairs, PairView, RemovePair
from core.trading.market_data import MarketData
from core.trading.state import KILLED, PAUSED, TradingStates
from core.trading.traded import TradedPairs
from core.trading.values import OrderPurpose, PositionStatus
from exchanges.base import Candle, Exchange, Market, MarketEvent, OpenMarkets, PairSubscriptions, Ticker
from exchanges.clock import Clock
from exchanges.errors import ExchangeError, TradectlError
from persistence.db import Database
from strategies.base import Candles, Direction, Signal

log = logging.getLogger("tradectl.pairs")
PAIR_RE = re.compile(r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$")
# the trading states that stop every pair's entries (running stops none)
_STOPPED_BY = {PAUSED: EntriesStop.PAUSED, KILLED: EntriesStop.KILLED}
PairIntent = AddPair | RemovePair | ListPairs
PAIR_INTENTS = (AddPair, RemovePair, ListPairs)
Evaluate = Callable[[str, Candles, Candles | None], Signal]


@runtime_checkable
class FeedListing(Protocol):
    """A feed that comes from another venue than the one orders go to (paper on a live feed): a pair
    added must be listed there, since that is where its prices come from."""

    venue_name: str

    async def listed(self, pair: str) -> Market | None:
        """The feed venue's market for ``pair``; None when it does not list it."""
        ...


class PairManager:
    """The changes to the engine's :class:`~core.trading.traded.TradedPairs` (see the module docstring):
    the one writer of the object every other part of the engine reads the pairs from."""

    def __init__(self, *, db: Database, venue: Exchange, feed: object, market_data: MarketData, exits: Exits,
                 executor: Executor, states: TradingStates, events: EventBus, clock: Clock,
                 markets: MutableMapping[str, Market], pairs: TradedPairs, counters: Counter[str],
                 overlay: Path | None = None) -> None:
        self.db, self.venue, self.feed, self.md, self.exits = db, venue, feed, market_data, exits
        self.executor, self.states, self.events, self.clock = executor, states, events, clock
        self.markets, self.traded, self.counters = markets, pairs, counters
        self._lock = asyncio.Lock()
        self._warming: dict[str, asyncio.Event] = {}
        self.overlay: Path | None = None
        # pairs added on a feed that cannot subscribe while running: saved, traded after a restart
        self.after_restart: dict[str, Market] = {}
        self.use_overlay(overlay)

    def use_overlay(self, path: Path | None) -> None:
        """Save changes to ``path`` from now on, and go on winding down the closing pairs it lists (what a
        restart does). Raises :class:`~core.settings.overlay.OverlayError` for a malformed file."""
        self.overlay = path
        found = read_pairs_overlay(path) if path is not None else None
        self.traded.resume_closing(found.closing if found else (), "restart")

    @property
    def pairs(self) -> tuple[str, ...]:
        return self.traded.active

    @property
    def closing(self) -> Mapping[str, str]:
        """The pairs removed with ``keep`` (or ``close`` before the exit filled), each with who asked."""
        return self.traded.closing

    # -- hooks the engine wires in -----------------------------------------------------------

    def guard(self, evaluate: Evaluate) -> Evaluate:
        """The strategies, with a buy in a closing pair turned into a hold (exits still go through)."""
        def guarded(pair: str, window: Candles, higher: Candles | None) -> Signal:
            signal = evaluate(pair, window, higher)
            if signal.direction == Direction.BUY and pair in self.closing:
                return Signal.hold(pair, signal.strategy, "pair is being removed: no new entries")
            return signal
        return guarded

    async def gate(self, feed: AsyncIterator[MarketEvent]) -> AsyncIterator[MarketEvent]:
        """The feed as the engine sees it: a pair's events wait while its history is back-filled, those
        of pairs no longer traded are dropped, and after each event closing pairs whose position is gone
        are dropped (a position a protection pass closes between events is noticed at the next one)."""
        async for event in feed:
            if isinstance(event, (Candle, Ticker)):
                warming = self._warming.get(event.pair)
                if warming is not None:
                    await warming.wait()
                if event.pair not in self.pairs:
                    self.counters["events_of_untraded_pairs"] += 1
                    continue
            yield event
            # here once the engine has handled the event (it asks for the next one): a stop it just filled
            # drops its closing pair now. Cheap: open positions are cached until the executor changes them.
            if self.closing:
                await self._settle_quietly()

    async def _settle_quietly(self) -> None:
        try:
            await self.settle()
        except Exception:  # the feed must go on; the next event tries again
            log.warning("could not check the closing pairs; trying again", exc_info=True)

    async def settle(self) -> None:
        """Drop each closing pair whose position is closed."""
        async with self._lock:
            for pair, by in list(self.closing.items()):
                if await self.exits.open_position(pair) is None:
                    await self._drop(pair, by, "its position is closed")

    # -- intents -----------------------------------------------------------------------------

    async def apply(self, intent: PairIntent) -> IntentResult:
        if isinstance(intent, ListPairs):
            return IntentResult(True, f"{len(self.pairs)} traded pair(s)", pairs=tuple(await self.views()))
        if not PAIR_RE.match(intent.pair):
            return IntentResult(False, f"{intent.pair!r} is not a pair: write it BASE/QUOTE, e.g. ETH/USD")
        async with self._lock:
            try:
                if isinstance(intent, AddPair):
                    return await self._add(intent)
                return await self._remove(intent)
            except OSError as exc:  # the overlay is written before anything changes in memory
                log.warning("pairs overlay not written", exc_info=True)
                return IntentResult(False, f"cannot save the pairs overlay ({exc}); nothing changed")

    async def views(self) -> list[PairView]:
        now = self.clock.now()
        state = self.states.state
        out = []
        for pair in self.pairs:
            pos = await self.exits.open_position(pair)
            market = self.markets.get(pair)
            stopped = EntriesStop.CLOSING if pair in self.closing else _STOPPED_BY.get(state)
            out.append(PairView(pair=pair, venue_symbol=market.venue_symbol if market else "",
                                position=None if pos is None else PositionStatus(pos.status),
                                entries_stopped_by=stopped, candle_age_s=self.md.age_s(pair, now)))
        out += [PairView(pair=pair, venue_symbol=market.venue_symbol, position=None,
                         entries_stopped_by=EntriesStop.AFTER_RESTART, candle_age_s=None)
                for pair, market in self.after_restart.items()]
        return out

    # -- add ---------------------------------------------------------------------------------

    async def _add(self, intent: AddPair) -> IntentResult:
        pair, by = intent.pair, intent.requested_by
        if pair in self.closing:
            if intent.preview:
                return IntentResult(True, f"{pair} is being removed; adding it allows its entries again")
            self._save(by, closing=[p for p in self.closing if p != pair])
            self.traded.reopen(pair)
            await self.events.announce(self.db, PairsChanged(pair=pair, change="added", by=by, pairs=self.pairs,
                                                             note="it was being removed; entries allowed again"))
            return IntentResult(True, f"{pair} is traded again: new entries are allowed")
        if pair in self.pairs:
            return IntentResult(False, f"{pair} is already traded; traded pairs: {', '.join(self.pairs)}")
        if pair in self.after_restart:
            return IntentResult(False, f"{pair} is already saved; it is traded after the next restart")
        listed = (await self.venue.markets()).get(pair)
        opens = isinstance(self.venue, OpenMarkets)
        if listed is None and not opens:
            return IntentResult(False, f"{self.venue.name} does not list {pair}; nothing changed")
        if listed is None and isinstance(self.feed, FeedListing):
            try:
                found = await self.feed.listed(pair)
            except TradectlError as exc:
                return IntentResult(False, f"cannot check {pair} against {self.feed.venue_name}'s markets ({exc}); "
                                           "nothing changed")
            if found is None:
                return IntentResult(False, f"{self.feed.venue_name} does not list {pair} (trading.feed: the prices "
                                           "come from there); nothing changed")
        if not isinstance(self.feed, PairSubscriptions):
            if listed is None:
                return IntentResult(False, f"the market-data feed cannot add {pair} while running; nothing changed")
            if intent.preview:
                return IntentResult(True, f"{pair} is listed by {self.venue.name}; it is traded after a restart")
            self._save(by, extra=(pair,))
            self.after_restart[pair] = listed
            return IntentResult(True, f"{pair} is saved and will be traded after a restart: this market-data "
                                      "feed cannot subscribe to a new pair while it runs")
        if intent.preview:
            return IntentResult(True, f"{pair} can be added")
        return await self._subscribe(pair, by, listed, self.feed)

    async def _subscribe(self, pair: str, by: str, listed: Market | None, feed: PairSubscriptions) -> IntentResult:
        warming = self._warming[pair] = asyncio.Event()
        subscribed = False
        try:
            history = list(await feed.add(pair))
            subscribed = True
            market = listed or await self._open(pair)
            source = self.feed.venue_name if isinstance(self.feed, FeedListing) else "the replay data"
            if not history:
                history, source = await self._venue_history(pair), f"{self.venue.name}"
            keep = self.md.capacity
            loaded = sum(self.md.add_candle(c).accepted for c in history[-keep:])
            self._save(by, extra=(pair,))
        except (TradectlError, OSError) as exc:
            if subscribed:
                await feed.remove(pair)
            return IntentResult(False, f"cannot add {pair}: {exc}; nothing changed")
        finally:
            warming.set()
            self._warming.pop(pair, None)
        self.markets[pair] = market
        self.traded.add(pair)
        note = f"{loaded} candles of history from {source}" if loaded else "no history yet"
        await self.events.announce(self.db, PairsChanged(pair=pair, change="added", by=by, pairs=self.pairs,
                                                         note=note))
        return IntentResult(True, f"{pair} added: {note}; its first scan comes with its next candle",
                            details=(f"venue symbol: {market.venue_symbol}",))

    async def _open(self, pair: str) -> Market:
        assert isinstance(self.venue, OpenMarkets)
        return await self.venue.open_market(pair)

    async def _venue_history(self, pair: str) -> list[Candle]:
        tf = self.md.base_tf
        try:
            candles = await self.venue.candles(pair, tf, limit=self.md.capacity)
        except ExchangeError as exc:
            log.warning("no history for %s from %s: %s", pair, self.venue.name, exc)
            return []
        now = self.clock.now()
        return [c for c in candles if c.ts.timestamp() + tf <= now.timestamp()]  # closed ones only

    # -- remove ------------------------------------------------------------------------------

    async def _remove(self, intent: RemovePair) -> IntentResult:
        pair, by = intent.pair, intent.requested_by
        if pair in self.after_restart:
            if not intent.preview:
                self._save(by, without=pair)
                del self.after_restart[pair]
            return IntentResult(True, f"{pair} is no longer saved for the next restart")
        if pair not in self.pairs:
            return IntentResult(False, f"{pair} is not traded; traded pairs: {', '.join(self.pairs)}")
        if len(self.pairs) == 1:
            return IntentResult(False, f"{pair} is the only traded pair; add another before removing it")
        pos = await self.exits.open_position(pair)
        if pos is None:
            if intent.preview:
                return IntentResult(True, f"{pair} has no open position: it is dropped at once")
            await self._drop(pair, by, "no open position")
            return IntentResult(True, f"{pair} removed: no longer traded")
        if intent.then is None:
            return IntentResult(False, f"{pair} has an open position. Say what to do with it: "
                                       f"'/pairs remove {pair} close' sells it at market, then stops trading "
                                       f"{pair}; '/pairs remove {pair} keep' stops new entries and keeps managing "
                                       "its stops and exits until it is closed, then drops the pair")
        if intent.then == "close" and self.states.state == KILLED:
            return IntentResult(False, "trading is killed: the kill closes every position itself; "
                                       f"use '/pairs remove {pair} keep' to drop {pair} once it is flat")
        if intent.preview:
            return IntentResult(True, f"{pair} has an open position ({intent.then})")
        try:
            self._save(by, closing=(*self.closing, pair))
        except OSError as exc:
            return IntentResult(False, f"cannot save the pairs overlay ({exc}); nothing changed")
        self.traded.wind_down(pair, by)
        if intent.then == "keep" or pos.status != PositionStatus.OPEN:
            why = "" if intent.then == "keep" else " (its entry order is still working, so it is not sold now)"
            await self.events.announce(self.db, PairsChanged(pair=pair, change="closing", by=by, pairs=self.pairs,
                                                             note="position kept" + why))
            return IntentResult(True, f"no new entries in {pair}{why}; its position keeps its stops and exits, "
                                      "and the pair is dropped once it is closed")
        await self.exits.exit_position(pos, purpose=OrderPurpose.CLOSE, reason=f"pair removed by {by}", by=by)
        await self.executor.poll_fills()
        if await self.exits.open_position(pair) is None:
            await self._drop(pair, by, "its position was sold at market")
            return IntentResult(True, f"{pair} removed: its position was sold at market")
        await self.events.announce(self.db, PairsChanged(pair=pair, change="closing", by=by, pairs=self.pairs,
                                                         note="exit sent, waiting for the fill"))
        return IntentResult(True, f"exit for {pair} sent; the pair is dropped once it fills (no new entries)")

    async def _drop(self, pair: str, by: str, note: str) -> None:
        self._save(by, without=pair)
        self.traded.drop(pair)
        if isinstance(self.feed, PairSubscriptions):
            await self.feed.remove(pair)
        await self.events.announce(self.db, PairsChanged(pair=pair, change="removed", by=by, pairs=self.pairs,
                                                         note=note))

    # -- the overlay ------------------------------------------------------------------------

    def _save(self, by: str, *, extra: tuple[str, ...] = (), without: str = "",
              closing: Sequence[str] | None = None) -> None:
        """Write the overlay for the pairs as they are about to be, before anything changes in memory
        (raises OSError when it cannot)."""
        if self.overlay is None:
            return
        pairs = tuple(p for p in (*self.pairs, *self.after_restart, *extra) if p != without)
        still = tuple(p for p in (self.closing if closing is None else closing) if p in pairs)
        write_pairs_overlay(self.overlay, PairsOverlay(pairs, still), by)


def with_saved_pairs(settings: Settings) -> Settings:
    """``settings`` with ``trading.pairs`` as the pairs overlay has them now, for a leadership term that
    starts in a process whose settings were loaded before ``/pairs`` changed them (a step-down and
    re-election must not forget a pair, nor leave its position unwatched). A ``trading.pairs`` from the
    environment still wins, as at start-up."""
    if setting_origin(settings, ("trading", "pairs")).startswith("environment"):
        return settings
    found = read_pairs_overlay(settings.service.data_dir / PAIRS_FILE)
    if found is None or found.pairs == settings.trading.pairs:
        return settings
    return settings.model_copy(update={"trading": settings.trading.model_copy(update={"pairs": found.pairs})})
