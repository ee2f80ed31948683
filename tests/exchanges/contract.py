"""The shared venue contract: behaviour every :class:`~exchanges.base.Exchange` must show.

The tests use the ``Exchange`` protocol only, plus a small :class:`VenueController` that each venue's
fixture provides to move its market. Plugging a venue in is one line in its own test module::

    from tests.exchanges.contract import ExchangeContract, venue_fixture
    from tests.exchanges.fakes import kraken_venue

    class TestKrakenContract(ExchangeContract):
        venue = venue_fixture(kraken_venue)

``venue_fixture(factory)`` turns a factory returning an async context manager that yields
``(exchange, controller)`` into the ``venue`` fixture. The factory's parameters without defaults are
requested as pytest fixtures by name, so ``paper_venue(db)`` runs once per database backend.

The suite trades ``BTC/USD`` when the venue lists it (else its first market) around a price of
20,000, with order sizes derived from the market's own minimums.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Protocol

import pytest

from exchanges.base import Candle, Exchange, Fill, Market, Order, OrderRequest, OrderStatus, OrderType, Side
from exchanges.errors import InsufficientFunds, InvalidOrder, OrderNotFound

PRICE = Decimal(20000)
QUOTE_FUNDS = Decimal(100000)
BASE_FUNDS = Decimal(2)


class VenueController(Protocol):
    """Levers on a test venue's market, in our own names (``BTC/USD``, ``USD``).

    - ``set_price``: subsequent market orders fill near ``price``; resting limits it crosses fill.
    - ``set_balance``: the account holds ``amount`` of ``currency`` (may be sync or async).

    Optional, used when present: ``async settle()`` lets the venue process what was just done
    (the paper venue is fed a candle; fakes need nothing), and
    ``add_candle(pair, timeframe_s, ts, open, high, low, close, volume)`` (sync or async) puts a
    candle into the venue's history. A controller without ``add_candle`` must make ``set_price``
    leave candles behind.
    """

    async def set_price(self, pair: str, price: Decimal) -> None: ...

    def set_balance(self, currency: str, amount: Decimal) -> Any: ...


def venue_fixture(factory: Callable[..., Any]) -> Any:
    """A ``venue`` fixture (for a test class) from an async-context-manager factory."""
    names = [p.name for p in inspect.signature(factory).parameters.values()
             if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    async def venue(self: Any, **fixtures: Any) -> Any:
        async with factory(**fixtures) as pair:
            yield pair

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
    venue.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return pytest.fixture(venue)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def new_client_id() -> str:
    return str(uuid.uuid4())


def _ceil_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def _tick(value: Decimal, market: Market) -> Decimal:
    return (value / market.price_tick).to_integral_value(rounding=ROUND_FLOOR) * market.price_tick


class Setup:
    """A venue prepared for one test: funded, priced, with a pair and a small order size."""

    def __init__(self, ex: Exchange, ctl: Any, market: Market) -> None:
        self.ex, self.ctl, self.market = ex, ctl, market
        self.pair = market.pair
        self.qty = _ceil_step(max(market.min_qty * 2, market.min_notional * 4 / PRICE), market.qty_step)

    async def settle(self) -> None:
        settle = getattr(self.ctl, "settle", None)
        if settle is not None:
            await settle()

    async def set_price(self, price: Decimal) -> None:
        await self.ctl.set_price(self.pair, price)
        await self.settle()

    async def set_balance(self, currency: str, amount: Decimal) -> None:
        await _maybe_await(self.ctl.set_balance(currency, amount))

    async def place(self, side: Side, qty: Decimal | None = None, limit: Decimal | None = None,
                    client_order_id: str | None = None, pair: str | None = None) -> Order:
        request = OrderRequest(client_order_id=client_order_id or new_client_id(), pair=pair or self.pair, side=side,
                               type=OrderType.MARKET if limit is None else OrderType.LIMIT,
                               qty=qty if qty is not None else self.qty,
                               limit_price=None if limit is None else _tick(limit, self.market))
        return await self.ex.place_order(request)

    async def final(self, order: Order) -> Order:
        """The order once the venue has processed it (settling a few times at most)."""
        for _ in range(5):
            current = await self.ex.fetch_order(self.pair, order.client_order_id)
            assert current is not None, f"order {order.client_order_id} vanished"
            if current.status.is_final:
                return current
            await self.settle()
        return current

    async def drain_fills(self, cursor: str | None) -> tuple[list[Fill], str | None]:
        """Every fill after ``cursor``, following pages until the venue has nothing new."""
        out: list[Fill] = []
        for _ in range(100):
            page = await self.ex.fills_since(cursor)
            out.extend(page.fills)
            if not page.fills or page.cursor == cursor:
                return out, page.cursor
            cursor = page.cursor
        raise AssertionError("fills_since never stopped returning pages")


class ExchangeContract:
    """Subclass with a ``venue`` fixture yielding ``(exchange, controller)``."""

    @pytest.fixture
    async def setup(self, venue: tuple[Exchange, Any]) -> Setup:
        ex, ctl = venue
        markets = await ex.markets()
        market = markets.get("BTC/USD") or markets[sorted(markets)[0]]
        s = Setup(ex, ctl, market)
        await s.set_balance(market.quote, QUOTE_FUNDS)
        await s.set_balance(market.base, BASE_FUNDS)
        await s.set_price(PRICE)
        return s

    async def test_markets_have_sane_rules_and_balances_follow_the_account(self, setup: Setup) -> None:
        markets = await setup.ex.markets()
        assert markets
        for pair, m in markets.items():
            assert pair == m.pair == f"{m.base}/{m.quote}"
            assert m.min_qty > 0 and m.qty_step > 0 and m.price_tick > 0 and m.min_notional >= 0
            assert 0 <= m.maker_fee < 1 and 0 <= m.taker_fee < 1
            assert m.round_qty(m.min_qty) == m.min_qty
        await setup.set_balance(setup.market.quote, Decimal(12345))
        balances = await setup.ex.balances()
        quote = balances[setup.market.quote]
        assert quote.currency == setup.market.quote
        assert quote.total == Decimal(12345) and quote.available == Decimal(12345)
        assert balances[setup.market.base].total == BASE_FUNDS

    @pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
    async def test_market_order_fills_near_the_price_with_a_quote_fee(self, setup: Setup, side: Side) -> None:
        _, cursor = await setup.drain_fills(None)
        order = await setup.final(await setup.place(side))
        assert order.status is OrderStatus.FILLED and order.filled_qty == setup.qty
        fills, _ = await setup.drain_fills(cursor)
        mine = [f for f in fills if f.client_order_id == order.client_order_id]
        assert sum(f.qty for f in mine) == setup.qty
        for f in mine:
            assert f.side is side and f.pair == setup.pair and f.ts.tzinfo is not None
            assert abs(f.price - PRICE) / PRICE < Decimal("0.02")
            assert f.fee > 0 and f.fee_currency == setup.market.quote
        balances = await setup.ex.balances()
        sign = 1 if side is Side.BUY else -1
        assert balances[setup.market.base].total == BASE_FUNDS + sign * setup.qty
        spent = QUOTE_FUNDS - balances[setup.market.quote].total
        notional = sum(f.qty * f.price for f in mine)
        assert spent == sign * notional + sum(f.fee for f in mine)

    async def test_fills_since_returns_each_fill_exactly_once(self, setup: Setup) -> None:
        _, start = await setup.drain_fills(None)
        orders = [await setup.place(Side.BUY), await setup.place(Side.SELL)]
        for o in orders:
            assert (await setup.final(o)).status is OrderStatus.FILLED
        fills, cursor = await setup.drain_fills(start)
        ids = [f.fill_id for f in fills]
        assert len(ids) == len(set(ids))
        assert {f.client_order_id for f in fills} >= {o.client_order_id for o in orders}
        again, _ = await setup.drain_fills(cursor)
        assert not {f.fill_id for f in again} & set(ids)

    async def test_limit_order_rests_is_found_and_cancels(self, setup: Setup) -> None:
        before = (await setup.ex.balances())[setup.market.quote].available
        order = await setup.place(Side.BUY, limit=PRICE * Decimal("0.8"))
        assert not order.status.is_final and order.filled_qty == 0
        assert order.client_order_id in {o.client_order_id for o in await setup.ex.open_orders(setup.pair)}
        assert order.client_order_id in {o.client_order_id for o in await setup.ex.open_orders()}
        assert (await setup.ex.balances())[setup.market.quote].available < before
        found = await setup.ex.fetch_order(setup.pair, order.client_order_id)
        assert found is not None and found.venue_order_id == order.venue_order_id
        assert found.limit_price == _tick(PRICE * Decimal("0.8"), setup.market)
        cancelled = await setup.ex.cancel_order(setup.pair, order.client_order_id)
        assert cancelled.status is OrderStatus.CANCELLED
        assert order.client_order_id not in {o.client_order_id for o in await setup.ex.open_orders(setup.pair)}
        fetched = await setup.ex.fetch_order(setup.pair, order.client_order_id)
        assert fetched is not None and fetched.status is OrderStatus.CANCELLED
        assert (await setup.ex.balances())[setup.market.quote].available == before

    @pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
    async def test_limit_order_fills_when_the_price_crosses_it(self, setup: Setup, side: Side) -> None:
        away = Decimal("0.95") if side is Side.BUY else Decimal("1.05")
        order = await setup.place(side, limit=PRICE * away)
        assert order.filled_qty == 0
        await setup.set_price(PRICE * (away + (away - 1) / 5))  # 1% beyond the limit
        done = await setup.final(order)
        assert done.status is OrderStatus.FILLED and done.filled_qty == setup.qty
        assert done.avg_price is not None
        assert (done.avg_price <= order.limit_price) if side is Side.BUY else (done.avg_price >= order.limit_price)  # type: ignore[operator]

    async def test_place_order_is_idempotent_on_client_order_id(self, setup: Setup) -> None:
        cid = new_client_id()
        first = await setup.place(Side.BUY, limit=PRICE * Decimal("0.8"), client_order_id=cid)
        second = await setup.place(Side.BUY, limit=PRICE * Decimal("0.8"), client_order_id=cid)
        assert second.venue_order_id == first.venue_order_id
        assert [o.client_order_id for o in await setup.ex.open_orders(setup.pair)].count(cid) == 1
        _, cursor = await setup.drain_fills(None)
        market_cid = new_client_id()
        await setup.final(await setup.place(Side.BUY, client_order_id=market_cid))
        await setup.place(Side.BUY, client_order_id=market_cid)
        await setup.settle()
        fills, _ = await setup.drain_fills(cursor)
        assert sum(f.qty for f in fills if f.client_order_id == market_cid) == setup.qty

    async def test_refusals_raise_the_documented_errors(self, setup: Setup) -> None:
        m = setup.market
        with pytest.raises(InvalidOrder):
            await setup.place(Side.BUY, qty=m.min_qty / 2)
        if m.min_notional > 0:
            cheap = _tick(m.min_notional / m.min_qty / 2, m)
            if cheap >= m.price_tick:
                with pytest.raises(InvalidOrder):
                    await setup.place(Side.BUY, qty=m.min_qty, limit=cheap)
        with pytest.raises(InvalidOrder):  # UnknownPair is an InvalidOrder
            await setup.place(Side.BUY, pair="NOPE/USD", limit=Decimal(1), qty=Decimal(10))
        with pytest.raises(OrderNotFound):
            await setup.ex.cancel_order(setup.pair, new_client_id())
        assert await setup.ex.fetch_order(setup.pair, new_client_id()) is None
        await setup.set_balance(m.quote, Decimal(100))
        await setup.set_balance(m.base, Decimal(0))
        with pytest.raises(InsufficientFunds):
            await setup.place(Side.BUY, qty=_ceil_step(Decimal(1000) / PRICE, m.qty_step))
        with pytest.raises(InsufficientFunds):
            await setup.place(Side.SELL, qty=setup.qty)
        assert await setup.ex.open_orders(setup.pair) == []

    async def test_ticker_order_book_and_candles_shape(self, setup: Setup) -> None:
        t = await setup.ex.ticker(setup.pair)
        assert t.pair == setup.pair and t.ts.tzinfo is not None
        assert 0 < t.bid <= t.ask and abs(t.last - PRICE) / PRICE < Decimal("0.02")
        book = await setup.ex.order_book(setup.pair, depth=5)
        assert book.pair == setup.pair and 0 < len(book.bids) <= 5 and 0 < len(book.asks) <= 5
        assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
        assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)
        assert book.bids[0][0] <= book.asks[0][0]  # never crossed
        assert all(q >= 0 for _, q in book.bids + book.asks)
        caps = setup.ex.capabilities.timeframes_s
        tf = 3600 if 3600 in caps else caps[0]
        add = getattr(setup.ctl, "add_candle", None)
        if add is not None:
            top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            for k in range(3, 0, -1):
                p = PRICE + k
                ts = top - timedelta(seconds=tf * k)
                await _maybe_await(add(setup.pair, tf, ts, p, p + 10, p - 10, p, Decimal(5)))
        candles = await setup.ex.candles(setup.pair, tf, limit=10)
        assert 0 < len(candles) <= 10
        assert all(isinstance(c, Candle) and c.pair == setup.pair and c.timeframe_s == tf for c in candles)
        assert all(c.ts.tzinfo is not None and c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
                   and c.volume >= 0 for c in candles)
        assert [c.ts for c in candles] == sorted({c.ts for c in candles})
