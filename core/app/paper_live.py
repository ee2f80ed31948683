"""Paper trading on live market data: the paper venue fed by a live venue's public stream.

``trading.mode = "paper"`` with ``trading.feed = "kraken"``, ``"coinbase"`` or ``"ccxt:<exchange id>"``.
The live venue is used only for what anyone may read, without API keys: its markets (so the paper venue's tick, step,
minimums and entry-tier fees are the real venue's), recent candles from REST (the strategies' warm-up,
loaded before the first scan), its ticker (the best bid and ask before any order) and its public
WebSocket (closed candles and tickers, with reconnects, ``FeedStatus`` events and REST gap fill from
:mod:`exchanges._stream`). Orders never leave the process: the :class:`~exchanges.paper.PaperExchange`
fills them against that stream on the wall clock (see its module docstring: best bid/ask plus
slippage, limits when traded through, partial fills by candle volume) and stores them in the
``paper_*`` tables like paper on replay.

The engine runs exactly as in live mode, including the stale-data watch: unless
``trading.stale_data_s`` is set, a pair whose data is older than two candles plus a minute pauses
entries, and a feed down for ``trading.feed_down_s`` does too.

Pairs change while it runs (``/pairs add``/``remove``): :class:`LiveFeed` is the engine's feed. A pair
added must be listed by the live venue (:class:`~core.trading.pairs.FeedListing`); the paper venue opens it
with that venue's real rules (tick, step, minimums, entry-tier fees), its recent candles from REST are its
history (handed back to the engine, which loads them before the pair's first scan) and the live stream
subscribes to it. A live stream without :class:`~exchanges.base.PairSubscriptions` refuses the add.

Not done: the order book channel is not followed (fills use the ticker's best bid and ask, and the
paper venue's ``order_book`` stays synthetic around the last price); the warm-up takes at most 720
candles per pair (one Kraken ``OHLC`` page).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.app.errors import StartupError
from core.settings.config import Settings
from core.trading.market_data import MarketData
from exchanges.base import Candle, Exchange, Market, MarketEvent, PairSubscriptions
from exchanges.clock import Clock, SystemClock
from exchanges.errors import ExchangeError, UnknownPair
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database

log = logging.getLogger("tradectl.paper_live")

WARMUP_MAX = 720  # Kraken's OHLC returns at most 720 rows


def public_feed_venue(settings: Settings, clock: Clock, **options: Any) -> Exchange:
    """The live venue named by ``trading.feed``, built without keys (public data only).

    The URLs are the venue's own ``rest_url``/``ws_url`` overrides (``kraken.ws_url``, ...), so a test
    or a proxy points the feed where the live adapter would go; ``options`` reach the adapter as they are.
    """
    feed = settings.trading.feed
    if feed.startswith("ccxt:"):
        return _ccxt_feed(settings, clock, **options)
    cfg = settings.kraken if feed == "kraken" else settings.coinbase
    urls: dict[str, Any] = {k: v for k, v in (("rest_url", cfg.rest_url), ("ws_url", cfg.ws_url)) if v}
    if feed == "kraken":
        from exchanges.kraken import KrakenExchange

        return KrakenExchange(None, None, clock=clock, **urls, **options)
    if feed == "coinbase":
        from exchanges.coinbase.public import public_coinbase

        return public_coinbase(clock=clock, **urls, **options)
    raise StartupError(f"trading.feed {feed!r} is not a live feed")


def _ccxt_feed(settings: Settings, clock: Clock, **options: Any) -> Exchange:
    """ccxt's class for the exchange, keyless, with the ``ccxt`` section's URLs, streaming and polling."""
    feed = settings.trading.feed
    exchange_id = feed.removeprefix("ccxt:")
    try:
        from exchanges.ccxt import CcxtExchange, catalog, unknown_venue
    except ImportError:
        raise StartupError(f"trading.feed = {feed!r} needs ccxt, an optional extra: "
                             "pip install 'tradectl[ccxt]'") from None
    if exchange_id not in {v.exchange_id for v in catalog()}:
        raise StartupError(f"trading.feed: {unknown_venue(exchange_id)}")
    c = settings.ccxt
    kwargs: dict[str, Any] = {"sandbox": c.sandbox, "rest_url": c.rest_url, "ws_url": c.ws_url,
                              "websocket": c.websocket, "poll_interval_s": c.poll_interval_s, "clock": clock}
    try:
        return CcxtExchange(exchange_id, **{**kwargs, **options})
    except ExchangeError as exc:
        raise StartupError(f"trading.feed {feed!r}: {exc}") from exc


def paper_rules(markets: Mapping[str, Market], pairs: tuple[str, ...], feed: str) -> dict[str, MarketRules]:
    """Each pair's paper rules, copied from the live venue's market; a pair it does not list refuses."""
    missing = [p for p in pairs if p not in markets]
    if missing:
        raise StartupError(f"trading.pairs: {', '.join(missing)} not listed by {feed} (trading.feed = {feed!r})")
    return {p: rules_of(markets[p]) for p in pairs}


def rules_of(m: Market) -> MarketRules:
    return MarketRules(min_qty=m.min_qty, qty_step=m.qty_step, price_tick=m.price_tick,
                       min_notional=m.min_notional, maker_fee=m.maker_fee, taker_fee=m.taker_fee)


class LiveFeed(AsyncIterator[MarketEvent]):
    """The live venue's stream as the paper engine's feed, with pairs that change while it runs (see the
    module docstring). Implements :class:`~exchanges.base.PairSubscriptions` and
    :class:`~core.trading.pairs.FeedListing`."""

    def __init__(self, source: Exchange, stream: AsyncIterator[MarketEvent], exchange: PaperExchange,
                 timeframe_s: int, history_bars: int) -> None:
        self.source, self.stream, self.exchange = source, stream, exchange
        self.venue_name = source.name
        self.timeframe_s, self.history_bars = timeframe_s, history_bars

    def __aiter__(self) -> LiveFeed:
        return self

    async def __anext__(self) -> MarketEvent:
        return await self.stream.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self.stream, "aclose", None)
        if aclose is not None:
            await aclose()

    async def listed(self, pair: str) -> Market | None:
        return (await self.source.markets()).get(pair)

    async def add(self, pair: str) -> Sequence[Candle]:
        """Check ``pair`` against the live venue, read its recent candles and quote, open it on the paper
        venue with the live venue's rules, then subscribe the stream. Returns the candles (closed ones,
        oldest first). Raises (nothing subscribed) when the venue does not list it or cannot be read."""
        market = await self.listed(pair)
        if market is None:
            raise UnknownPair(f"{self.venue_name} does not list {pair}")
        if not isinstance(self.stream, PairSubscriptions):
            raise ExchangeError(f"the {self.venue_name} stream cannot add a pair while it runs")
        tf, now = self.timeframe_s, self.exchange.clock.now().timestamp()
        candles = await self.source.candles(pair, tf, limit=min(self.history_bars, WARMUP_MAX))
        history = [c for c in candles if c.ts.timestamp() + tf <= now]  # closed ones only
        await self.stream.add(pair)
        await self.exchange.open_market(pair, rules_of(market))
        for candle in history:
            await self.exchange.on_candle(candle)
        try:
            await self.exchange.on_ticker(await self.source.ticker(pair))
        except ExchangeError as exc:
            log.info("no %s quote for %s from REST (%s); the stream brings one", self.venue_name, pair, exc)
        return history

    async def remove(self, pair: str) -> None:
        if isinstance(self.stream, PairSubscriptions):
            await self.stream.remove(pair)


@dataclass
class LivePaper:
    """What one term of paper-on-live trading runs on; :meth:`stop` closes both venues."""

    settings: Settings  # the service's, with the live stale-data default applied
    exchange: PaperExchange
    source: Exchange
    feed: LiveFeed
    clock: SystemClock
    history: dict[str, list[Candle]]

    def warm(self, md: MarketData) -> int:
        """Load the back-filled candles into the engine's market data (no scan runs on them)."""
        loaded = 0
        for candles in self.history.values():
            loaded += sum(1 for c in candles if md.add_candle(c).accepted)
        return loaded

    async def stop(self) -> None:
        """Close the stream (its WebSocket) now rather than when the generator is collected, then both
        venues. Call after the engine stopped: the feed must no longer be iterated."""
        aclose = getattr(self.feed, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except (RuntimeError, ExchangeError, OSError):  # already closed, or closing a dead link
                log.debug("closing the %s stream", self.source.name, exc_info=True)
        try:
            await self.exchange.stop()
        finally:
            await self.source.stop()


async def open_paper_live(settings: Settings, db: Database, **venue_options: Any) -> LivePaper:
    """Connect the public feed, copy its market rules, back-fill history, start the paper venue.

    A pair the venue does not list, or a venue that cannot be reached, refuses the start
    (:class:`~core.app.errors.StartupError`, naming the setting) and leaves nothing open.
    """
    s = settings
    tf, feed_name, pairs = s.trading.timeframe_s, s.trading.feed, s.trading.pairs
    clock = SystemClock()
    source = public_feed_venue(s, clock, **venue_options)
    if tf not in source.capabilities.timeframes_s:
        raise StartupError(f"trading.timeframe {s.trading.timeframe} is not offered by {feed_name} "
                             f"(trading.feed = {feed_name!r})")
    try:
        await source.start()
        rules = paper_rules(await source.markets(), pairs, feed_name)
        history = {p: await source.candles(p, tf, limit=min(s.trading.history_bars, WARMUP_MAX)) for p in pairs}
    except ExchangeError as exc:
        await source.stop()
        raise StartupError(f"the {feed_name} market data feed (trading.feed) cannot be read: {exc}") from exc
    except BaseException:
        await source.stop()
        raise
    p = s.paper
    exchange = PaperExchange(db, rules, starting_balances=p.starting_balances, slippage_bps=p.slippage_bps,
                             impact_bps=p.impact_bps, volume_share=p.volume_share, latency_ms=p.latency_ms,
                             clock=clock, timeframe_s=tf, limit_through=True)
    try:
        await exchange.start()
        for candles in history.values():
            for candle in candles:  # the paper venue's prices, volumes and candle history
                await exchange.on_candle(candle)
        for pair in pairs:  # the best bid and ask now, so no order fills at a stale close
            try:
                await exchange.on_ticker(await source.ticker(pair))
            except ExchangeError as exc:
                log.info("no %s quote for %s from REST (%s); the stream brings one", feed_name, pair, exc)
    except BaseException:
        await exchange.stop()
        await source.stop()
        raise
    if s.trading.stale_data_s == 0:  # watch freshness as live mode does
        trading = s.trading.model_copy(update={"stale_data_s": float(2 * tf + 60)})
        s = s.model_copy(update={"trading": trading})
    log.info("paper trading on live %s prices: %s, %d candle(s) of history", feed_name, ", ".join(pairs),
             sum(len(h) for h in history.values()))
    feed = LiveFeed(source, source.market_events(list(pairs), tf), exchange, tf, s.trading.history_bars)
    return LivePaper(settings=s, exchange=exchange, source=source, feed=feed, clock=clock, history=history)
