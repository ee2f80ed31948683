"""The paper venue: the :class:`~exchanges.base.Exchange` protocol against simulated fills.

It has no market data of its own. Whoever owns the feed (the engine, a backtest) hands it every
closed candle through :meth:`PaperExchange.on_candle` (or :meth:`on_market_event`, which fits the
engine's market-hook signature). Each candle, in this order:

1. resting orders of that pair are matched against it: a market order still waiting (``next_open``
   mode, or the unfilled part of an order larger than the candle's liquidity) fills at the candle's
   **open** plus slippage and impact, taker fee; a limit buy fills **at its limit** when the
   candle's low reaches it (a sell when the high does), maker fee -- even when the candle gapped
   through the limit, which gives no price improvement and errs on the cautious side;
2. the candle's close becomes the pair's last price.

A market order placed between candles fills according to ``fill_on`` (see
:class:`~exchanges.paper.model.FillOn`): at once at the last close plus slippage (default, live-like),
or at the next candle's open. With ``last_close`` a limit order that is already marketable when
placed fills at once as a taker, at its limit or better.

Liquidity: in one candle all orders of a pair together fill at most ``volume_share`` of its volume;
what is left fills in the following candles, so a large order ends ``partially_filled`` then
``filled`` with one fill per candle, each at its own price and fee. A zero-volume candle (an
exchange's downtime filler) fills nothing. What the last candle has left also serves orders placed
after it. Before any candle, or fed only tickers, liquidity is unlimited and impact is zero.

Latency: every API call first sleeps ``latency_ms`` of wall time *outside* the venue's lock, so
concurrent calls overlap as they would against a remote venue; only the in-memory update and the
database write are serialised.

Live feeds (paper trading on live prices, :mod:`core.app.paper_live`): the feed's tickers go to
:meth:`PaperExchange.on_ticker`, which keeps the best bid and ask. Market orders then fill at the ask
(buys) or the bid (sells) plus slippage instead of at the last price, :meth:`ticker` shows the real
quotes, and resting orders are matched on every ticker too: a limit fills at its limit once the last
trade went *through* it (``limit_through=True``, which the candles obey as well), within the
liquidity the last candle left. A ticker's own fills have no cursor: tickers are never re-fed.

The synthetic order book puts ``depth`` levels on each side of the last price, spaced by the same
slippage and impact model that fills use, each sized ``volume_share * volume / depth`` of the last
candle; sizes are 0 when no candle volume is known.

Exactly once per candle: the fills a candle made and a per-pair cursor (that candle and the
liquidity it has left) are stored in one transaction, so a candle fed again after a crash -- its
consumer died before recording that it had processed it -- sets the price but fills nothing twice.
A candle whose fills could not be stored is forgotten, so feeding it again matches it again.

Not done: market data (last price, candle history) is not persisted, so after a restart a market
order is refused with :class:`~exchanges.errors.TemporaryError` until the first candle arrives;
fills are stamped with the clock's current time, not a time inside the candle; there is no
time-in-force, stop order or order expiry.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchanges.base import (
    Balance,
    Candle,
    Capabilities,
    FeedStatus,
    Fill,
    FillsPage,
    Market,
    MarketEvent,
    Order,
    OrderBook,
    OrderRequest,
    Ticker,
)
from exchanges.clock import Clock, SystemClock
from exchanges.errors import ExchangeError, OrderNotFound, TemporaryError
from exchanges.paper.book import Cursor, PaperBook, Snapshot
from exchanges.paper.model import ZERO, FillOn, MarketRules, PaperOrder
from exchanges.paper.store import PaperStorage, PaperStore
from persistence.db import Database


class PaperExchange:
    """Simulated spot venue persisted in the ``paper_*`` tables (see the module docstring).

    ``venue`` keys its rows in the database (one name per simulated account); ``name`` is always
    ``"paper"``. ``starting_balances`` are written only on the very first start, when the database
    has no balances for ``venue`` yet. ``store`` replaces the database tables (a backtest hands a
    :class:`~exchanges.paper.store.MemoryPaperStore`: its venue lives as long as the run).
    """

    name = "paper"

    def __init__(
        self,
        db: Database,
        markets: Mapping[str, MarketRules],
        *,
        starting_balances: Mapping[str, Decimal] | None = None,
        slippage_bps: Decimal = Decimal("5"),
        impact_bps: Decimal = Decimal("50"),
        volume_share: Decimal = Decimal("0.1"),
        latency_ms: int = 0,
        clock: Clock | None = None,
        venue: str = "paper",
        fill_on: FillOn | str = FillOn.LAST_CLOSE,
        timeframe_s: int = 3600,
        history: int = 1000,
        fills_page: int = 500,
        limit_through: bool = False,
        store: PaperStorage | None = None,
    ) -> None:
        if not (ZERO < volume_share <= 1):
            raise ValueError("volume_share must be in (0, 1]")
        if min(slippage_bps, impact_bps) < 0 or latency_ms < 0:
            raise ValueError("slippage, impact and latency cannot be negative")
        self.venue = venue
        self.clock: Clock = clock or SystemClock()
        self.fill_on = FillOn(fill_on)
        self.timeframe_s = timeframe_s
        self.capabilities = Capabilities(websocket_market_data=False, private_stream=False, timeframes_s=(timeframe_s,))
        self._store: PaperStorage = store if store is not None else PaperStore(db, venue)
        self._book = PaperBook({pair: rules.market(pair) for pair, rules in markets.items()},
                               slippage_bps=slippage_bps, impact_bps=impact_bps, volume_share=volume_share,
                               clock=self.clock, history=history, limit_through=limit_through)
        self._seed = {c: Decimal(v) for c, v in (starting_balances or {}).items()}
        self._latency_s = latency_ms / 1000
        self._fills_page = fills_page
        self._lock = asyncio.Lock()
        self._loaded = False
        self._stopped = asyncio.Event()
        self._pending: list[tuple[list[PaperOrder], list[Fill], dict[str, Any], dict[str, Cursor],
                                  asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._seen: dict[str, PaperOrder] = {}
        self._known_ids: set[str] = set()
        self._fills_dirty = True
        self._drained_at: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load balances (seeding them on the very first start) and open orders; safe twice."""
        self._stopped.clear()
        await self._ensure_loaded()

    async def stop(self) -> None:
        """Stop; writes already accepted are persisted first (the flush is awaited, never cancelled)."""
        self._stopped.set()
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.wait({flusher}, timeout=10)

    async def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        async with self._lock:
            if not self._loaded:
                self._book.reset(*await self._store.load(self._seed))
                self._known_ids = await self._store.order_ids()
                cursors = await self._store.cursors()
                self._book.matched = cursors
                for pair, (ts, left) in cursors.items():  # after a failed write: back to what is stored
                    if self._book.cursor(pair) is not None and self._book.history[pair][-1].ts == ts:
                        self._book.liquidity[pair] = left
                self._loaded = True

    # -- market data in ----------------------------------------------------------------------

    async def on_market_event(self, event: MarketEvent) -> None:
        """Engine market hook: candles and tickers move the price and match resting orders."""
        if isinstance(event, Candle):
            await self.on_candle(event)
        elif isinstance(event, Ticker):
            await self.on_ticker(event)

    async def on_ticker(self, ticker: Ticker) -> None:
        """Take a live quote (last, best bid and ask) and match the pair's resting orders against it."""
        await self._ensure_loaded()
        saved: asyncio.Future[None] | None = None
        async with self._lock:
            before = self._book.snapshot()
            touched, fills = self._book.on_ticker(ticker)
            if touched:
                saved = self._commit(touched, fills, before)
        if saved is not None:
            await saved

    async def on_candle(self, candle: Candle) -> None:
        """Match resting orders of the candle's pair against it, then take its close as last price.

        A candle not newer than the last one seen for the pair, or for a pair this venue does not
        trade, is ignored, so a feed that repeats itself cannot fill an order twice.
        """
        await self._ensure_loaded()
        saved: asyncio.Future[None] | None = None
        async with self._lock:
            before = self._book.snapshot()
            market = self._book.market_state(candle.pair)
            result = self._book.on_candle(candle)
            if result is not None and result[0]:
                saved = self._commit(result[0], result[1], before, (candle.pair,))
        if saved is not None:
            try:
                await saved
            except ExchangeError:
                async with self._lock:  # not stored: the same candle, fed again, is matched again
                    self._book.restore_market(candle.pair, market)
                raise

    # -- Exchange protocol -------------------------------------------------------------------

    async def markets(self) -> dict[str, Market]:
        await self._delay()
        return dict(self._book.markets)

    async def open_market(self, pair: str, rules: MarketRules | None = None) -> Market:
        """Trade ``pair`` from now on (``/pairs add``, see :class:`~exchanges.base.OpenMarkets`), with
        ``rules`` -- the real venue's, when paper trades on a live feed -- or else the rules of the venue's
        first market (replay has no venue to copy from). A market already traded is returned as it is."""
        book = self._book
        if pair not in book.markets:
            if rules is None:
                t = next(iter(book.markets.values()), None) or MarketRules().market(pair)
                rules = MarketRules(min_qty=t.min_qty, qty_step=t.qty_step, price_tick=t.price_tick,
                                    min_notional=t.min_notional, maker_fee=t.maker_fee, taker_fee=t.taker_fee)
            book.markets[pair] = rules.market(pair)
            book.history.setdefault(pair, deque(maxlen=next(iter(book.history.values())).maxlen if book.history
                                                else None))
        return book.markets[pair]

    async def balances(self) -> dict[str, Balance]:
        await self._delay()
        await self._ensure_loaded()
        return {c: Balance(currency=c, total=b.total, available=b.total - b.locked)
                for c, b in self._book.balances.items()}

    async def place_order(self, request: OrderRequest) -> Order:
        """Validate, reserve funds and (per ``fill_on``) fill; idempotent on ``client_order_id``.

        Placing an id that already exists returns that order unchanged, whatever the new request
        says. Refused orders raise and are not stored, so the same id may be used again.
        """
        await self._delay()
        await self._ensure_loaded()
        stored = await self._stored(request.client_order_id)
        async with self._lock:
            existing = self._in_memory(request.client_order_id) or stored
            if existing is not None:
                return existing.to_order()
            order = self._book.new_order(request)
            before = self._book.snapshot()
            fills = self._book.add(order, fill_now=self.fill_on is FillOn.LAST_CLOSE)
            self._seen[order.client_order_id] = order
            self._known_ids.add(order.client_order_id)
            saved = self._commit([order], fills, before, (order.pair,))
        await saved
        return order.to_order()

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        """Cancel an open order. An order that is already final is returned as it is."""
        await self._delay()
        await self._ensure_loaded()
        stored = await self._stored(client_order_id)
        async with self._lock:
            order = self._in_memory(client_order_id) or stored
            if order is None or order.pair != pair:
                raise OrderNotFound(f"no paper order {client_order_id!r} on {pair}")
            if order.status.is_final:
                return order.to_order()
            before = self._book.snapshot()
            self._book.cancel(order)
            saved = self._commit([order], [], before)
        await saved
        return order.to_order()

    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None:
        await self._delay()
        await self._ensure_loaded()
        order = await self._find(client_order_id)
        return order.to_order() if order is not None and order.pair == pair else None

    async def open_orders(self, pair: str | None = None) -> list[Order]:
        await self._delay()
        await self._ensure_loaded()
        return [o.to_order() for o in self._book.open.values() if pair is None or o.pair == pair]

    async def fills_since(self, cursor: str | None) -> FillsPage:
        """Fills after ``cursor`` (a ``paper_fills.seq``), oldest first, one page at a time."""
        await self._delay()
        try:
            after = int(cursor) if cursor else 0
        except ValueError as exc:
            raise ExchangeError(f"not a paper fills cursor: {cursor!r}") from exc
        if not self._fills_dirty and cursor == self._drained_at:
            # nothing stored since this cursor was drained (None: no fill was ever stored for this venue)
            return FillsPage(fills=[], cursor=cursor)
        self._fills_dirty = False
        page = await self._store.fills_after(after, self._fills_page)
        new_cursor = str(page[-1][0]) if page else cursor
        if len(page) < self._fills_page:
            self._drained_at = new_cursor
        else:
            self._fills_dirty = True  # more pages wait
        return FillsPage(fills=[f for _, f in page], cursor=new_cursor)

    async def ticker(self, pair: str) -> Ticker:
        """The live feed's best bid and ask, else ``slippage_bps`` either side of the last price."""
        await self._delay()
        return self._book.ticker(pair)

    async def order_book(self, pair: str, depth: int = 10) -> OrderBook:
        await self._delay()
        return self._book.order_book(pair, depth)

    async def candles(self, pair: str, timeframe_s: int, since: datetime | None = None,
                      limit: int = 500) -> list[Candle]:
        """The candles this venue has been fed (a bounded history), oldest first."""
        await self._delay()
        self._book.market(pair)
        if timeframe_s != self.timeframe_s:
            raise ExchangeError(f"the paper venue keeps {self.timeframe_s}s candles, not {timeframe_s}s")
        rows = [c for c in self._book.history[pair] if since is None or c.ts >= since]
        return rows[-limit:] if limit > 0 else []

    async def market_events(self, pairs: list[str], timeframe_s: int) -> AsyncIterator[MarketEvent]:
        """One ``FeedStatus``, then silence until :meth:`stop`: paper has no data of its own.

        Feed the engine from a :class:`~exchanges.replay.ReplayFeed` or a live venue instead, and
        hand each candle to :meth:`on_candle`.
        """
        yield FeedStatus(connected=True, detail="paper venue: market data comes from the configured feed",
                         ts=self.clock.now())
        await self._stopped.wait()

    # -- paper administration ----------------------------------------------------------------

    async def set_balance(self, currency: str, total: Decimal) -> None:
        """Set a currency's total (deposits and withdrawals in tests and demos); reservations stay."""
        await self._ensure_loaded()
        async with self._lock:
            before = self._book.snapshot()
            self._book.balance(currency).total = Decimal(total)
            saved = self._commit([], [], before)
        await saved

    # -- internals ---------------------------------------------------------------------------

    async def _delay(self) -> None:
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)

    async def _find(self, client_order_id: str) -> PaperOrder | None:
        return self._in_memory(client_order_id) or await self._store.get_order(client_order_id)

    async def _stored(self, client_order_id: str) -> PaperOrder | None:
        """The stored order for an id this process does not hold in memory (no query for new ids)."""
        if self._in_memory(client_order_id) is not None or client_order_id not in self._known_ids:
            return None
        return await self._store.get_order(client_order_id)

    def _in_memory(self, client_order_id: str) -> PaperOrder | None:
        return self._book.open.get(client_order_id) or self._seen.get(client_order_id)

    def _commit(self, orders: list[PaperOrder], fills: list[Fill], before: Snapshot,
                pairs: tuple[str, ...] = ()) -> asyncio.Future[None]:
        """Queue a change for the database; the returned future resolves once it is stored.

        Changes made while a write is in progress are stored together in the next transaction
        (group commit), so fifty concurrent orders cost two or three transactions, not fifty, and
        no caller hears "done" before its change is durable. The candle cursor of each pair in
        ``pairs`` goes into the same transaction when it moved, so the fills a candle made and the
        record that it was matched are stored together.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        cursors = {p: cur for p in pairs
                   if (cur := self._book.cursor(p)) is not None and cur != self._book.matched.get(p)}
        self._pending.append((list(orders), list(fills), dict(self._book.changed_since(before)), cursors, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="paper:persist")
        return fut

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            orders: dict[str, PaperOrder] = {}
            fills: list[Fill] = []
            balances: dict[str, Any] = {}
            cursors: dict[str, Cursor] = {}
            for o, f, b, c, _ in batch:
                orders.update((x.client_order_id, x) for x in o)
                fills.extend(f)
                balances.update(b)
                cursors.update(c)
            try:
                await self._store.save(list(orders.values()), fills, balances, cursors)
            except Exception as exc:  # noqa: BLE001 - every waiter hears about it
                self._loaded = False  # memory ran ahead of the database: reload it on the next call
                self._seen.clear()
                for *_, fut in batch:
                    if not fut.done():
                        error = TemporaryError(f"the paper venue could not save its state: {exc}")
                        error.__cause__ = exc  # callers tell a database outage from a venue problem
                        fut.set_exception(error)
                continue
            self._book.matched.update(cursors)
            if fills:
                self._fills_dirty = True
            for *_, fut in batch:
                if not fut.done():
                    fut.set_result(None)
