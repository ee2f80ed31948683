"""Orders by hand from chat (/buy, /sell, /orders, /cancel), applied by the engine like any intent.

A manual **buy** opens a position the engine then manages like the strategy's: the same initial stop
(``risk.default_stop_pct`` below the expected price), trailing stop and take-profit rules, the
strategy's exit signals, /close and the kill. It passes the live risk checks a strategy entry passes
(trading running, one position per pair, most open positions, per-pair and total exposure, cash,
the venue's minimum quantity and value). ``force`` (an admin's override) skips the risk limits and
a pause, never the kill, the venue's own rules (step, minimums) or the cash there is.

A manual **sell** reduces or closes the open position of its pair. The engine trades spot,
long-only: a sell with no position to sell (a short) is refused, and so is a sell of more than the
position holds. A sell is allowed while paused (it reduces risk, like /close), never while killed
(the kill flattens with its own orders).

Every sell goes through :func:`core.trading.sells.write_sells`, the guard the engine's own exits and the
kill use: a sell while another order is selling the position (a stop's exit working or partly filled, a
resting limit sell) is refused. /cancel leaves the engine's protective exits (stop, trailing stop,
take-profit, the strategy's exit: :data:`PROTECTIVE`) alone: cancelling one would leave the position
unprotected, and the engine would sell again at its next check anyway. A buy in a pair being removed
(``/pairs remove``) is refused, also one that races the removal (:meth:`Exits.entering
<core.trading.exits.Exits.entering>`).

A **limit** order rests at the venue until the market reaches it. A resting limit sell is the
position's closing order; when the position's stop or take-profit triggers while it rests, it is
cancelled first so the protective exit can sell (:meth:`ManualOrders.before_protect`). A limit price
further than ``trading.manual_limit_band`` from the market is refused as a likely typo.

Every order row is written (with its client order id) before the venue hears of it, as for the
strategy's orders, and a kill that lands between writing and sending wins: the order is abandoned.
An order the venue could not take at once is retried by the engine like the strategy's
(:mod:`core.trading.order_reasons`): a buy is an entry, so only while trading runs and within a
minute; a forced buy during a pause is therefore voided rather than retried.

Not done: adding to an open position (one position per pair, as for the strategy), stop or
take-profit levels chosen by hand, time-in-force or expiry of resting orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from sqlmodel import col, select

from core.settings.settings_models import RiskSettings
from core.trading import accounting
from core.trading.books import Books
from core.trading.entries import EntryGuard, NoEntry
from core.trading.executor import Executor, OrderSpec
from core.trading.exits import Exits
from core.trading.intents import (
    CancelOrders,
    Intent,
    IntentResult,
    ListOrders,
    OrderQuote,
    OrderView,
    PlaceOrder,
    short_order_id,
)
from core.trading.market_data import MarketData
from core.trading.risk import Portfolio
from core.trading.sells import NoSell, SellAsk, write_sells
from core.trading.state import KILLED, RUNNING, TradingStates
from core.trading.traded import TradedPairs
from core.trading.values import EXIT_PURPOSES, OPEN_STATES, OrderPurpose, PositionStatus, market_rules
from exchanges.base import Market, OrderStatus, OrderType, Side
from exchanges.clock import Clock
from exchanges.errors import TradectlError
from persistence.db import Database
from persistence.models import OrderRow, PositionRow

ZERO = Decimal(0)
MANUAL = "manual"  # the strategy name of a position opened by hand


# Exits the engine placed to protect or close a position on its own: /cancel leaves them alone (a cancelled
# stop exit would leave the position unprotected until the next check placed it again).
PROTECTIVE = frozenset({OrderPurpose.STOP, OrderPurpose.TRAILING, OrderPurpose.TAKE_PROFIT, OrderPurpose.EXIT})


def _engine_exit(o: OrderRow) -> str:
    what = {OrderPurpose.STOP: "stop", OrderPurpose.TRAILING: "trailing-stop", OrderPurpose.TAKE_PROFIT:
            "take-profit", OrderPurpose.EXIT: "strategy"}.get(OrderPurpose(o.purpose), str(o.purpose))
    return f"{what} exit {short_order_id(o.client_order_id)} of the {o.pair} position"


class Refused(TradectlError):
    """A manual order that must not go: the message says why, in the chat's words."""


def _fail(message: str) -> IntentResult:
    return IntentResult(False, message)


def _plain(value: Decimal) -> str:
    """A decimal as typed (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class _Plan:
    """A checked order: its quote, and for a sell the position it reduces."""

    quote: OrderQuote
    market: Market
    position: PositionRow | None = None


class ManualOrders:
    """``pairs`` are the traded pairs, read at each order (``/pairs`` may change them while running; no buy
    goes into one being removed); ``markets`` is the engine's mapping of the venue's markets."""

    def __init__(self, *, db: Database, executor: Executor, states: TradingStates, exits: Exits, books: Books,
                 risk: RiskSettings, market_data: MarketData, markets: Mapping[str, Market],
                 pairs: TradedPairs, clock: Clock, limit_band: Decimal, entries: EntryGuard) -> None:
        """``entries`` writes a buy under the lock every entry takes (:mod:`core.trading.entries`)."""
        self.db, self.executor, self.states, self.exits, self.books = db, executor, states, exits, books
        self.risk, self.md, self.markets, self.pairs, self.clock = risk, market_data, markets, pairs, clock
        self.entries = entries
        self.limit_band = limit_band
        self._resting_sells: set[str] = set()  # pairs that may have a resting limit sell
        self._loaded = False  # whether the set above includes what the database held at start

    async def apply(self, intent: Intent) -> IntentResult:
        try:
            if isinstance(intent, PlaceOrder):
                return await self._place(intent)
            if isinstance(intent, CancelOrders):
                return await self._cancel(intent)
            if isinstance(intent, ListOrders):
                return IntentResult(True, "open orders", orders=tuple(self._view(o) for o in await self._open()))
        except Refused as exc:
            return _fail(str(exc))
        return _fail(f"unsupported intent {type(intent).__name__}")

    # -- checking and pricing ------------------------------------------------------------

    async def check(self, intent: PlaceOrder) -> _Plan:
        """Price the order and run every check; :class:`Refused` says what is wrong."""
        if intent.pair not in self.pairs or intent.pair not in self.markets:
            raise Refused(f"unknown pair {intent.pair}; traded pairs: {', '.join(self.pairs.active)}")
        if intent.side == Side.BUY and intent.pair in self.pairs.closing:
            raise Refused(self._removed(intent.pair))
        if intent.side not in (Side.BUY, Side.SELL):
            raise Refused(f"side must be buy or sell, not {intent.side!r}")
        state = self.states.state
        if state == KILLED:
            raise Refused("trading is killed: no orders until an admin sends /rearm (then /resume)")
        market = self.markets[intent.pair]
        now_price = self.md.price(intent.pair)
        if now_price is None or now_price <= 0:
            raise Refused(f"no price for {intent.pair} yet; try again once market data has arrived")
        limit = intent.limit_price
        if limit is not None:
            self._check_limit(limit, now_price, market)
        price = limit if limit is not None else now_price
        qty, requested, rounded = self._quantity(intent, market, price)
        value = qty * price
        if qty < market.min_qty:
            raise Refused(f"{_plain(qty)} {market.base} is below the venue minimum of {_plain(market.min_qty)} "
                          f"{market.base} for {intent.pair}")
        if value < market.min_notional:
            raise Refused(f"order value {value:.2f} {market.quote} is below the venue minimum of "
                          f"{_plain(market.min_notional)} {market.quote} for {intent.pair}")
        rests = limit is not None and (limit < now_price if intent.side == Side.BUY else limit > now_price)
        rate = market.maker_fee if rests else market.taker_fee
        fee = value * rate
        quote = OrderQuote(pair=intent.pair, side=intent.side, qty=qty, requested=requested, price=price,
                           market_price=now_price, limit_price=limit, value=value, fee=fee, fee_rate=rate,
                           total=value + fee if intent.side == Side.BUY else value - fee, rounded=rounded,
                           maker=rests,
                           qty_step=market.qty_step, price_tick=market.price_tick)
        if intent.side == Side.BUY:
            return _Plan(await self._check_buy(intent, quote, market, state), market)
        position = await self._check_sell(intent, quote, market)
        return _Plan(replace(quote, position_qty=position.qty), market, position)

    def _check_limit(self, limit: Decimal, price: Decimal, market: Market) -> None:
        if limit <= 0:
            raise Refused("the limit price must be more than 0")
        if market.round_price(limit) != limit:
            raise Refused(f"the limit price {_plain(limit)} is not on the venue's price tick of "
                          f"{_plain(market.price_tick)} {market.quote}")
        away = abs(limit - price) / price
        if away > self.limit_band:
            raise Refused(f"the limit price {_plain(limit)} is {away:.1%} from the market price {_plain(price)}; "
                          f"at most {self.limit_band:.0%} away is accepted (trading.manual_limit_band)")

    def _quantity(self, intent: PlaceOrder, market: Market, price: Decimal) -> tuple[Decimal, str, bool]:
        """The quantity in base units, the amount as asked, and whether it was rounded to the step."""
        if (intent.qty is None) == (intent.quote_amount is None):
            raise Refused("give the amount either in base units (0.01) or in the quote currency (250USD)")
        if intent.qty is not None:
            qty = intent.qty
            if qty <= 0:
                raise Refused("the amount must be more than 0")
            if qty < market.min_qty:
                raise Refused(f"{_plain(qty)} {market.base} is below the venue minimum of "
                              f"{_plain(market.min_qty)} {market.base} for {intent.pair}")
            if market.round_qty(qty) != qty:
                raise Refused(f"{_plain(qty)} has too many decimals: {intent.pair} trades in steps of "
                              f"{_plain(market.qty_step)} {market.base}")
            return qty, f"{_plain(qty)} {market.base}", False
        amount = intent.quote_amount
        assert amount is not None
        if amount <= 0:
            raise Refused("the amount must be more than 0")
        try:
            exact = amount / price
        except InvalidOperation as exc:  # pragma: no cover - price is positive
            raise Refused("cannot price this amount") from exc
        qty = market.round_qty(exact)
        return qty, f"{_plain(amount)} {market.quote}", qty != exact

    async def _check_buy(self, intent: PlaceOrder, quote: OrderQuote, market: Market, state: str) -> OrderQuote:
        existing = await self.exits.open_position(intent.pair)
        if existing is not None:
            what = "an entry order waiting to fill" if existing.status == PositionStatus.PENDING \
                else f"an open position of {_plain(existing.qty)} {market.base}"
            raise Refused(f"{intent.pair} already has {what}; one position per pair (/sell reduces it, "
                          f"/close closes it, /cancel withdraws a waiting order)")
        portfolio = await self.books.portfolio()
        cost = quote.value + quote.fee
        if cost > portfolio.cash_available:
            raise Refused(f"not enough {market.quote}: the order needs ≈ {cost:.2f}, "
                          f"{portfolio.cash_available:.2f} is available")
        limits = self._limits(quote, market, state, portfolio)
        if limits and not intent.force:
            raise Refused(self._over(limits))
        stop = market.round_price(quote.price * (1 - self.risk.default_stop_pct))
        return replace(quote, stop=stop, overridden=tuple(limits))

    def _limits(self, quote: OrderQuote, market: Market, state: str, portfolio: Portfolio) -> list[str]:
        """The risk limits a buy would pass (``force`` overrides them): checked once to answer (and
        preview), and again under the entry lock against what the database then holds."""
        limits: list[str] = []
        if state != RUNNING:
            limits.append(f"trading is {state} ({self.states.current.reason}); /resume allows entries again")
        r = self.risk
        if portfolio.open_positions >= r.max_open_positions:
            limits.append(f"most open positions reached ({portfolio.open_positions} of {r.max_open_positions})")
        equity = portfolio.equity
        pair_cap = equity * r.max_pair_exposure
        if quote.value > pair_cap:
            limits.append(f"{quote.value:.2f} {market.quote} is over the per-pair limit of {pair_cap:.2f} "
                          f"({r.max_pair_exposure:.0%} of equity)")
        used = sum(portfolio.exposure_by_pair.values(), ZERO)
        room = equity * r.max_total_exposure - used
        if quote.value > room:
            limits.append(f"total exposure would pass {r.max_total_exposure:.0%} of equity "
                          f"(room {max(room, ZERO):.2f} {market.quote})")
        return limits

    @staticmethod
    def _over(limits: list[str]) -> str:
        return "refused by the risk limits: " + "; ".join(limits) + ". An admin may add force to override them."

    async def _check_sell(self, intent: PlaceOrder, quote: OrderQuote, market: Market) -> PositionRow:
        position = await self.exits.open_position(intent.pair)
        if position is None or position.status != PositionStatus.OPEN:
            raise Refused(f"no open position in {intent.pair} to sell; the engine trades spot, long-only, "
                          f"so a sell without a position (a short) is refused")
        if quote.qty > position.qty:
            raise Refused(f"the position holds {_plain(position.qty)} {market.base}; sell at most that "
                          f"(/close {intent.pair} sells all of it)")
        left = position.qty - quote.qty
        if ZERO < left < market.min_qty:
            raise Refused(f"that would leave {_plain(left)} {market.base}, below the venue minimum of "
                          f"{_plain(market.min_qty)}; sell all {_plain(position.qty)} or less")
        if await self._closing_order(position) is not None:
            raise Refused(f"an order is already closing the {intent.pair} position; /orders shows it")
        return position

    async def _closing_order(self, position: PositionRow) -> OrderRow | None:
        async with self.db.read() as s:
            return (await s.exec(select(OrderRow).where(
                OrderRow.position_id == position.id, col(OrderRow.status).in_(OPEN_STATES),
                col(OrderRow.purpose).in_(EXIT_PURPOSES | {OrderPurpose.KILL})))).first()

    # -- placing -------------------------------------------------------------------------

    @staticmethod
    def _removed(pair: str) -> str:
        return (f"{pair} is being removed (/pairs remove): no new entries there, by hand or by the strategy; "
                f"/sell and /close still work, and /pairs add {pair} allows entries again")

    async def _place(self, intent: PlaceOrder) -> IntentResult:
        plan = await self.check(intent)
        q = plan.quote
        if intent.preview:
            return IntentResult(True, "ok", quote=q)
        if intent.side == Side.BUY:
            # from here until it is sent, a /pairs remove sees this entry as a pending position
            with self.exits.entering(q.pair):
                return await self._send(intent, plan)
        return await self._send(intent, plan)

    async def _send(self, intent: PlaceOrder, plan: _Plan) -> IntentResult:
        q = plan.quote
        by = intent.requested_by
        order_type = OrderType.LIMIT if q.limit_price is not None else OrderType.MARKET
        if intent.side == Side.BUY:
            def judge(portfolio: Portfolio) -> tuple[PositionRow, OrderSpec] | str:
                limits = self._limits(q, plan.market, self.states.state, portfolio)
                if limits and not intent.force:
                    return self._over(limits)
                override = f" (risk limits overridden by {by}: {'; '.join(limits)})" if limits else ""
                pos = PositionRow(pair=q.pair, status=PositionStatus.PENDING, stop_price=q.stop, take_profit=None,
                                  trailing_pct=self.risk.trailing_stop_pct, high_water=q.market_price,
                                  strategy=MANUAL, reason=f"manual buy by {by}{override}"[:500],
                                  opened_at=self.clock.now())
                return pos, OrderSpec(pair=q.pair, side=Side.BUY, qty=q.qty, purpose=OrderPurpose.ENTRY,
                                      position_id=None, reason=f"manual buy{override}", requested_by=by,
                                      order_type=order_type, limit_price=q.limit_price)

            # the limits again, under the lock every entry takes: a strategy entry or another /buy
            # written since the check above counts (core/trading/entries.py)
            written = await self.entries.write(q.pair, judge, force=intent.force)
            if isinstance(written, NoEntry):
                return _fail(f"{written.why}; nothing was bought")
            _, row = written
            if not self.pairs.takes_entries(q.pair):  # removed while the order was written
                await self.executor.abandon(row, "the pair is being removed")
                return _fail(self._removed(q.pair) + "; nothing was bought")
        else:
            row = await self._prepare_sell(plan, by, order_type)
        if self.states.state == KILLED:  # a kill landed while the order was being written: it wins
            await self.executor.abandon(row, "trading was killed before the order was sent")
            return _fail("trading was killed before the order was sent; nothing was bought or sold")
        await self.executor.send(row)
        await self.executor.poll_fills()
        if row.order_type == OrderType.LIMIT and row.side == Side.SELL:
            self._resting_sells.add(row.pair)
        async with self.db.read() as s:
            fresh = await s.get(OrderRow, row.id)
        sent = self._view(fresh or row)
        if sent.status == OrderStatus.REJECTED:
            return IntentResult(False, f"the venue refused the order: {(fresh or row).last_error}", quote=q,
                                orders=(sent,))
        return IntentResult(True, "order sent", quote=q, orders=(sent,))

    async def _prepare_sell(self, plan: _Plan, by: str, order_type: OrderType) -> OrderRow:
        """Write the sell through the guard every sell of a position passes (:mod:`core.trading.sells`):
        nothing else may be selling the position, and it must still hold the quantity."""
        q, position = plan.quote, plan.position
        assert position is not None and position.id is not None
        whole = q.qty == position.qty and order_type == OrderType.MARKET  # a resting limit may yet give way
        (row,) = await write_sells(self.executor, [SellAsk(
            position_id=position.id, purpose=OrderPurpose.CLOSE, reason=f"manual sell by {by}", by=by, qty=q.qty,
            order_type=order_type, limit_price=q.limit_price, mark_exit=whole)], self.markets)
        if isinstance(row, NoSell):
            if row.busy:
                raise Refused(f"an order is already closing the {q.pair} position; nothing was sold")
            raise Refused(f"the {q.pair} position changed meanwhile; nothing was sold")
        return row

    # -- protection ----------------------------------------------------------------------

    async def before_protect(self, pair: str, *, low: Decimal | None = None, high: Decimal | None = None) -> None:
        """Before the stops are checked: a resting limit sell must not keep the position's stop or
        take-profit from selling, so when either triggers it is cancelled first. Costs nothing for a
        pair without a resting limit sell (the set of such pairs is kept in memory)."""
        if not self._loaded:  # once, after a start: what earlier runs left resting
            async with self.db.read() as s:
                rows = (await s.exec(select(OrderRow.pair).where(
                    OrderRow.side == Side.SELL.value, OrderRow.order_type == OrderType.LIMIT.value,
                    col(OrderRow.status).in_(OPEN_STATES), OrderRow.purpose == OrderPurpose.CLOSE))).all()
            self._resting_sells.update(rows)  # a union: a sell placed while this read ran stays known
            self._loaded = True
        if pair not in self._resting_sells:
            return
        position = await self.exits.open_position(pair)
        price = self.md.price(pair)
        if position is None or position.status != PositionStatus.OPEN or price is None:
            self._resting_sells.discard(pair)
            return
        low = low if low is not None else price
        high = high if high is not None else price
        stop_hit = position.stop_price is not None and low <= position.stop_price
        target_hit = position.take_profit is not None and high >= position.take_profit
        resting = [o for o in await self._open() if o.pair == pair and o.side == Side.SELL
                   and o.order_type == OrderType.LIMIT and o.purpose == OrderPurpose.CLOSE]
        if not resting:
            self._resting_sells.discard(pair)
            return
        if stop_hit or target_hit:
            await self.executor.cancel_many(resting)
            await self.executor.poll_fills()

    # -- orders --------------------------------------------------------------------------

    async def _open(self) -> list[OrderRow]:
        async with self.db.read() as s:
            return await accounting.orders_open(s)

    def _view(self, o: OrderRow) -> OrderView:
        step, tick = market_rules(self.markets, o.pair)
        return OrderView.from_row(o, qty_step=step, price_tick=tick)

    async def _cancel(self, intent: CancelOrders) -> IntentResult:
        if self.states.state == KILLED:
            raise Refused("trading is killed: the kill cancels every order itself (/kill again retries it)")
        orders = [o for o in await self._open() if o.purpose != OrderPurpose.KILL]
        allowed = [o for o in orders if intent.pairs is None or o.pair in intent.pairs]
        kept: tuple[str, ...] = ()
        if intent.everything:
            chosen = [o for o in allowed if o.purpose not in PROTECTIVE]
            guarded = [o for o in allowed if o.purpose in PROTECTIVE]
            kept = (f"left working: the engine's {', '.join(_engine_exit(o) for o in guarded)}",) if guarded else ()
            if not chosen:
                return IntentResult(True, "no open orders", kept, orders=())
        else:
            wanted = intent.order_id.strip().lower()
            if not wanted:
                raise Refused("say which order: /cancel <id> (see /orders), or /cancel all")
            chosen = [o for o in allowed if o.client_order_id.lower() == wanted
                      or short_order_id(o.client_order_id).lower() == wanted]
            if not chosen:
                known = ", ".join(short_order_id(o.client_order_id) for o in allowed) or "none"
                raise Refused(f"no open order {intent.order_id}; open orders: {known} (/orders lists them)")
            if len(chosen) > 1:
                raise Refused(f"{intent.order_id} names {len(chosen)} orders; give the full id from /orders")
            if chosen[0].purpose in PROTECTIVE:
                raise Refused(f"{intent.order_id} is the engine's {_engine_exit(chosen[0])}: it cannot be cancelled "
                              "(the position would be left unprotected, and the engine would sell again at its next "
                              "check); it ends when it fills. /kill stops all trading")
        if intent.preview:
            return IntentResult(True, "ok", kept, orders=tuple(self._view(o) for o in chosen))
        done = await self.executor.cancel_many(chosen)
        await self.executor.poll_fills()
        async with self.db.read() as s:  # a cancel the venue answered with a fill: the fill is read just above
            sold = set((await s.exec(select(OrderRow.id).where(col(OrderRow.id).in_([o.id for o in chosen]),
                                                               OrderRow.status == OrderStatus.FILLED))).all())
        results = list(zip(chosen, done, strict=True))
        cancelled = tuple(self._view(o) for o, ok in results if ok and o.id not in sold)
        filled = [short_order_id(o.client_order_id) for o, ok in results if ok and o.id in sold]
        failed = [short_order_id(o.client_order_id) for o, ok in results if not ok]
        notes = ((f"already filled: {', '.join(filled)}",) if filled else ()) + kept
        if failed:
            return IntentResult(False, f"the venue did not confirm cancelling {', '.join(failed)}; "
                                       f"/orders shows what is still open", notes, orders=cancelled)
        return IntentResult(True, f"cancelled {len(cancelled)} order(s)", notes, orders=cancelled)
