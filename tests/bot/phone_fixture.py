"""A fuller account for layout tests: what a phone has to show on a busy day.

:class:`PhoneTrading` is the test :class:`~tests.bot.fake_trading.FakeTrading` with five open
positions in coins from PEPE (a price of 0.00000812) to BTC (64,000), fifty closed trades with
exit reasons of every length, open orders in four pairs (a PEPE limit among them), scheduled jobs
with their latest runs, and a daily report that ``/report daily_report`` answers with. ``/buy`` and
``/sell`` are priced at the positions' marks with a venue's fees and steps, as the engine prices them
(a market order fills at once, a limit rests and joins ``/orders``); ``/cancel`` withdraws orders.
:func:`fill_audit_log` sends fifty commands through a harness, so ``/audit 50`` has fifty varied rows
(long arguments, refusals, unknown commands).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from bot.harness import ChatHarness
from core.ops.reports import DailyReport, WeeklyReport
from core.trading.intents import CancelOrders, Intent, IntentResult, ListOrders, OrderQuote, OrderView, PlaceOrder
from core.trading.values import OrderPurpose
from core.trading.views import JobOutcome, JobRunSummary, JobView, StatusView, TradeView
from exchanges.base import OrderStatus, OrderType, Side
from tests.bot.fake_trading import FakeTrading, make_position

PAIRS = ("PEPE/USD", "DOGE/USD", "SOL/USD", "ETH/USD", "BTC/USD")
# pair, quantity, entry, mark: from a fraction of a cent to tens of thousands
POSITIONS = (
    ("PEPE/USD", "125000000", "0.00000812", "0.00000790"),
    ("DOGE/USD", "15000", "0.1423", "0.1481"),
    ("SOL/USD", "19.8", "142.37", "151.20"),
    ("ETH/USD", "0.704", "3120.55", "3088.10"),
    ("BTC/USD", "0.0312", "64000.50", "66210.00"),
)
REASONS = ("take profit", "stop loss", "trailing stop hit after a 4.1% pullback from the high", "closed from chat",
           "kill: emergency stop requested from chat by telegram:1 (exchange maintenance)", "signal exit")
T_END = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
# pair: quantity step, price tick (a venue's rules, from whole PEPE to a hundred-thousandth of a BTC)
RULES = {"PEPE/USD": (Decimal(1), Decimal("0.00000001")), "DOGE/USD": (Decimal(1), Decimal("0.0001")),
         "SOL/USD": (Decimal("0.01"), Decimal("0.01")), "ETH/USD": (Decimal("0.0001"), Decimal("0.01")),
         "BTC/USD": (Decimal("0.00001"), Decimal("0.1"))}
MARKS = {pair: Decimal(mark) for pair, _qty, _entry, mark in POSITIONS}  # the market now, position or not
MAKER_FEE, TAKER_FEE = Decimal("0.0016"), Decimal("0.0026")
# client order id, pair, side, quantity, filled, limit (None: a market order), placed this long before T_END
ORDERS = (
    ("tc5e0b7d21c4a8f3e9", "PEPE/USD", "buy", "250000000", "0", "0.00000755", timedelta(minutes=4)),
    ("tc0a9f31c7d2b4e6a1", "BTC/USD", "sell", "0.0312", "0.0104", "68500.0", timedelta(hours=3, minutes=12)),
    ("tc77c3e0a1f9d5b2c8", "ETH/USD", "buy", "0.5", "0", "2980.5", timedelta(days=2, hours=1)),
    ("tcd41b8e6f0c3a7915", "DOGE/USD", "sell", "15000", "0", "0.1650", timedelta(minutes=45)),
    ("tc3c6a2f8e1d0b9c47", "SOL/USD", "sell", "9.9", "0", "165.00", timedelta(seconds=20)),
)


def _trades() -> list[TradeView]:
    out = []
    for i in range(50):
        pair, qty, entry, _mark = POSITIONS[i % len(POSITIONS)]
        e = Decimal(entry)
        move = Decimal(((i * 7) % 11) - 5) / 100  # -5% .. +5%
        x = (e * (1 + move)).quantize(e)
        q = Decimal(qty)
        closed = T_END - timedelta(hours=5 * i + 1)
        cents = Decimal("0.01")
        out.append(TradeView(pair=pair, qty=q, entry_price=e, exit_price=x, pnl=(q * (x - e)).quantize(cents),
                             pnl_pct=(move * 100).quantize(cents), fees=(q * e / 1000).quantize(cents),
                             opened_at=closed - timedelta(hours=3), closed_at=closed,
                             exit_reason=REASONS[i % len(REASONS)]))
    return list(reversed(out))  # oldest first, as they were closed


def _order(client_id: str, pair: str, side: str, qty: Decimal, filled: Decimal, limit: Decimal | None,
           created: datetime, avg: Decimal | None = None, fee: Decimal = Decimal(0)) -> OrderView:
    step, tick = RULES[pair]
    status = OrderStatus.FILLED if filled >= qty else (
        OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.SUBMITTED)
    return OrderView(client_order_id=client_id, pair=pair, side=Side(side),
                     order_type=OrderType.MARKET if limit is None else OrderType.LIMIT, qty=qty, filled_qty=filled,
                     limit_price=limit, avg_price=avg, fee=fee, status=status,
                     purpose=OrderPurpose.ENTRY if side == "buy" else OrderPurpose.CLOSE, requested_by="telegram:1",
                     created_at=created, qty_step=step, price_tick=tick)


def _open_orders() -> list[OrderView]:
    return [_order(cid, pair, side, Decimal(qty), Decimal(filled), None if limit is None else Decimal(limit),
                   T_END - ago) for cid, pair, side, qty, filled, limit, ago in ORDERS]


def _report(job: str) -> DailyReport | WeeklyReport:
    """The report a job would send for the day (or week) before T_END, in Berlin time."""
    daily = job == "daily_report"
    kind = DailyReport if daily else WeeklyReport
    start = datetime(2024, 4, 29, 22, tzinfo=UTC) if daily else datetime(2024, 4, 21, 22, tzinfo=UTC)
    days, label = (1, "Tue 2024-04-30") if daily else (7, "week 2024-04-22 to 2024-04-28")
    return kind(ts=T_END, period="day" if days == 1 else "week", label=label, start=start,
                end=start + timedelta(days=days),
                timezone="Europe/Berlin", quote="USD", realized=Decimal("1163.91"), unrealized=Decimal("-284.17"),
                fees=Decimal("16.08"), trades=12, wins=7, losses=5, win_rate=Decimal("0.5833"),
                best_pair="SOL/USD", best_pnl=Decimal("905.12"), worst_pair="PEPE/USD", worst_pnl=Decimal("-275.00"),
                max_drawdown=Decimal("412.50"), max_drawdown_pct=Decimal("3.84"), equity_start=Decimal("10732.40"),
                equity_end=Decimal("11896.31"), image_png=b"\x89PNG\r\n\x1a\n" + job.encode())


class PhoneTrading(FakeTrading):
    """Five positions, fifty trades, open orders, a schedule and reports (the plain fake has none of these)."""

    def __init__(self) -> None:
        super().__init__(pairs=PAIRS)
        for pair, qty, entry, mark in POSITIONS:
            self.open[pair] = make_position(pair, qty, entry, mark)
        self.closed.extend(_trades())
        self.orders = _open_orders()
        self._placed = 0

    async def status(self) -> StatusView:
        return replace(await super().status(), open_orders=len(self.orders))

    async def submit(self, intent: Intent) -> IntentResult:
        if isinstance(intent, PlaceOrder):
            self.intents.append(intent)
            return self._place(intent)
        if isinstance(intent, ListOrders):
            self.intents.append(intent)
            return IntentResult(True, "open orders", orders=tuple(self.orders))
        if isinstance(intent, CancelOrders):
            self.intents.append(intent)
            return self._cancel(intent)
        return await super().submit(intent)

    def _quote(self, intent: PlaceOrder) -> OrderQuote:
        """Priced as the engine prices it: at the limit or the market, the quantity down to the step."""
        step, tick = RULES[intent.pair]
        base, _, quote = intent.pair.partition("/")
        position = self.open.get(intent.pair)
        market = MARKS[intent.pair]
        price = intent.limit_price if intent.limit_price is not None else market
        if intent.qty is not None:
            qty, requested, rounded = intent.qty, f"{intent.qty.normalize():f} {base}", False
        else:
            amount = intent.quote_amount or Decimal(0)
            qty = (amount / price).quantize(step, rounding=ROUND_DOWN)
            requested, rounded = f"{amount:f} {quote}", qty * price != amount
        rests = intent.limit_price is not None and (price < market if intent.side == "buy" else price > market)
        value = qty * price
        rate = MAKER_FEE if rests else TAKER_FEE
        stop = (price * Decimal("0.97")).quantize(tick, rounding=ROUND_DOWN) if intent.side == "buy" else None
        return OrderQuote(pair=intent.pair, side=intent.side, qty=qty, requested=requested, price=price,
                          market_price=market, limit_price=intent.limit_price, value=value, fee=value * rate,
                          fee_rate=rate, total=value + value * rate if intent.side == "buy" else value - value * rate,
                          stop=stop, rounded=rounded, maker=rests, qty_step=step, price_tick=tick,
                          position_qty=position.qty if position is not None and intent.side == "sell" else None)

    def _place(self, intent: PlaceOrder) -> IntentResult:
        """One position per pair and long-only, as the engine has it; a filled order moves the position."""
        if intent.pair not in self.pairs:
            return IntentResult(False, f"unknown pair {intent.pair}; traded pairs: {', '.join(self.pairs)}")
        if intent.side == "buy" and intent.pair in self.open:
            return IntentResult(False, f"{intent.pair} already has an open position; one position per pair")
        if intent.side == "sell" and intent.pair not in self.open:
            return IntentResult(False, f"no open position in {intent.pair} to sell (spot, long-only)")
        q = self._quote(intent)
        if intent.preview:
            return IntentResult(True, "priced", quote=q)
        self._placed += 1
        client_id = f"tc{self._placed:02d}f4e1b9a7c3d2{intent.side[0]}{self._placed % 10}"
        now = T_END + timedelta(minutes=20)
        if q.maker:  # a limit away from the market rests in the book
            order = _order(client_id, q.pair, q.side, q.qty, Decimal(0), q.limit_price, now)
            self.orders.append(order)
            return IntentResult(True, "order sent", quote=q, orders=(order,))
        order = _order(client_id, q.pair, q.side, q.qty, q.qty, q.limit_price, now, avg=q.price, fee=q.fee)
        held = self.open.pop(q.pair, None)
        left = (held.qty if held is not None else Decimal(0)) + (q.qty if q.side == "buy" else -q.qty)
        if left > 0:
            entry = held.entry_price if held is not None else q.price
            self.open[q.pair] = make_position(q.pair, f"{left:f}", f"{entry:f}", f"{MARKS[q.pair]:f}")
        return IntentResult(True, "order sent", quote=q, orders=(order,))

    def _cancel(self, intent: CancelOrders) -> IntentResult:
        chosen = [o for o in self.orders if (intent.everything or intent.order_id in (o.short_id, o.client_order_id))
                  and (intent.pairs is None or o.pair in intent.pairs)]
        if not intent.everything and not chosen:
            return IntentResult(False, f"no open order {intent.order_id}; /orders lists them")
        if not intent.preview:
            self.orders = [o for o in self.orders if o not in chosen]
        return IntentResult(True, f"{len(chosen)} order(s)", orders=tuple(chosen))

    async def run_job(self, name: str) -> JobOutcome:
        if name not in ("daily_report", "weekly_report"):
            return await super().run_job(name)
        return JobOutcome("finished", (_report(name),))

    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]:  # type: ignore[override]
        jobs = [JobView("daily_report", "every day at 08:00", T_END + timedelta(hours=18)),
                JobView("weekly_report", "Mondays at 08:00", T_END + timedelta(days=5)),
                JobView("reconcile", "every 15 minutes", T_END + timedelta(minutes=15)),
                JobView("retention", "every day at 03:30", T_END + timedelta(hours=14))]
        runs = [JobRunSummary(name, T_END - timedelta(hours=h), status)
                for name, h, status in (("reconcile", 0, "finished"), ("daily_report", 6, "finished"),
                                        ("retention", 10, "failed: database busy, retried"),
                                        ("weekly_report", 54, "finished"))]
        return jobs, runs


AUDIT_COMMANDS = (
    "/status", "/positions", "/pnl week", "/trades 5", "/balance",
    "/pause waiting for the FOMC minutes at 20:00 before adding any risk", "/resume", "/nosuchcommand",
    "/daily 30", "/audit 3", "/help close", "/close NOPE/USD", "/performance", "/whoami", "/health",
    "/trades 500", "/pnl month",
)


async def fill_audit_log(h: ChatHarness, rows: int = 50) -> None:
    """``rows`` commands, cycling through :data:`AUDIT_COMMANDS`: each leaves one audit row."""
    for i in range(rows):
        await h.send(AUDIT_COMMANDS[i % len(AUDIT_COMMANDS)])
