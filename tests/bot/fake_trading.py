"""An in-memory stand-in for the trading engine, implementing :class:`core.trading.views.TradingService`.

It is a fake, and says so: no venue, no orders, no market data. It records every intent it is
given and changes its own state the way the engine does (pause keeps exits, resume is refused
while killed, kill flattens and reports, rearm leaves trading paused), so the command core can be
tested on its own. With a :class:`core.trading.state.StateStore` the trading state is persisted like the
engine's, which lets tests restart the chat side and see the state survive.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.trading.intents import (
    CloseAll,
    ClosedPosition,
    ClosePosition,
    EntriesStop,
    Intent,
    IntentResult,
    Kill,
    ListOrders,
    ListPairs,
    PairView,
    PauseEntries,
    Rearm,
    Resume,
)
from core.trading.state import KILLED, PAUSED, RUNNING, StateStore
from core.trading.values import PositionStatus
from core.trading.views import (
    BalanceView,
    HealthView,
    JobOutcome,
    JobRunSummary,
    JobView,
    PairPerformance,
    Period,
    PeriodPnl,
    PeriodUnit,
    PnlSummary,
    PositionView,
    ServiceUnavailable,
    StatusView,
    TradeView,
)

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
# intents that only read (answered through submit, see core.trading.intents)
READ_ONLY = frozenset({"ListOrders", "ListPairs"})
ZERO = Decimal(0)


def make_position(pair: str, qty: str = "0.5", entry: str = "40000", mark: str = "41000") -> PositionView:
    q, e, m = Decimal(qty), Decimal(entry), Decimal(mark)
    pnl = (q * (m - e)).quantize(Decimal("0.00000001"))  # exact to the satoshi, as the engine keeps it
    return PositionView(pair=pair, qty=q, entry_price=e, mark_price=m, unrealized_pnl=pnl,
                        unrealized_pct=((m - e) / e * 100).quantize(Decimal("0.01")), stop=e * Decimal("0.97"),
                        take_profit=None, opened_at=T0, strategy="trend")


class FakeTrading:
    def __init__(self, pairs: tuple[str, ...] = ("BTC/USD", "ETH/USD", "SOL/USD"),
                 state_store: StateStore | None = None) -> None:
        self._pairs = pairs
        self.store = state_store
        self.state, self.reason, self.changed_by = RUNNING, "", ""
        self.changed_at: datetime | None = None
        self.intents: list[Intent] = []
        self.open: dict[str, PositionView] = {}
        self.closed: list[TradeView] = []
        self.fail_with: BaseException | None = None  # makes status() raise, to test internal failures

    async def load(self) -> FakeTrading:
        if self.store is not None:
            st = await self.store.load()
            self.state, self.reason = st.state, st.reason
            self.changed_by, self.changed_at = st.changed_by, st.changed_at
        return self

    @property
    def pairs(self) -> tuple[str, ...]:
        return self._pairs

    async def _set(self, state: str, reason: str, by: str) -> None:
        self.state, self.reason, self.changed_by, self.changed_at = state, reason, by, T0
        if self.store is not None:
            await self.store.save(state, reason, by, T0)

    def _flatten(self, pairs: list[str]) -> tuple[ClosedPosition, ...]:
        closed = []
        for pair in pairs:
            p = self.open.pop(pair)
            fees = (p.qty * (p.mark_price or p.entry_price) * Decimal("0.002")).quantize(Decimal("0.00000001"))
            self.closed.append(TradeView(pair=pair, qty=p.qty, entry_price=p.entry_price, exit_price=p.mark_price,
                                         pnl=p.unrealized_pnl, pnl_pct=p.unrealized_pct, fees=fees,
                                         opened_at=p.opened_at, closed_at=T0, exit_reason="closed from chat"))
            closed.append(ClosedPosition(pair=pair, qty=p.qty, exit_price=p.mark_price, pnl=p.unrealized_pnl,
                                         fees=fees, pnl_pct=p.unrealized_pct))
        return tuple(closed)

    async def submit(self, intent: Intent) -> IntentResult:
        self.intents.append(intent)
        by = intent.requested_by
        if isinstance(intent, PauseEntries):
            if self.state == KILLED:
                return IntentResult(False, "trading is killed; nothing to pause (an admin can /rearm)")
            await self._set(PAUSED, intent.reason, by)
            return IntentResult(True, "entries paused; open positions are still managed (stops, exits)")
        if isinstance(intent, Resume):
            if self.state == KILLED:
                return IntentResult(False, "trading is killed; an admin must /rearm first")
            await self._set(RUNNING, "resumed", by)
            return IntentResult(True, "trading resumed")
        if isinstance(intent, Rearm):
            if self.state != KILLED:
                return IntentResult(False, f"trading is {self.state}, not killed; nothing to re-arm")
            await self._set(PAUSED, "re-armed after kill; /resume to trade", by)
            return IntentResult(True, "re-armed: trading is paused; /resume starts entries")
        if isinstance(intent, Kill):
            await self._set(KILLED, intent.reason, by)
            return IntentResult(True, "KILLED: trading halted, every position flattened",
                                closed=self._flatten(sorted(self.open)))
        if isinstance(intent, ClosePosition):
            if intent.pair not in self.open:
                return IntentResult(False, f"no open position in {intent.pair}")
            return IntentResult(True, "closing 1 position(s)", closed=self._flatten([intent.pair]))
        if isinstance(intent, CloseAll):
            if not self.open:
                return IntentResult(True, "no open positions")
            n = len(self.open)
            return IntentResult(True, f"closing {n} position(s)", closed=self._flatten(sorted(self.open)))
        if isinstance(intent, ListOrders):  # no venue, so no open order (test_manual_orders.py has real ones)
            return IntentResult(True, "open orders")
        if isinstance(intent, ListPairs):  # every pair with its fake state; changing them is the engine's (tests/bot)
            stopped = None if self.state == RUNNING else EntriesStop(self.state)
            return IntentResult(True, f"{len(self._pairs)} traded pair(s)", pairs=tuple(
                PairView(p, p.replace("/", ""), PositionStatus.OPEN if p in self.open else None, stopped, 12.0)
                for p in self._pairs))
        return IntentResult(False, f"unsupported intent {type(intent).__name__}")

    async def status(self) -> StatusView:
        if self.fail_with is not None:
            raise self.fail_with
        positions = tuple(self.open.values())
        upnl = sum((p.unrealized_pnl for p in positions), ZERO)
        return StatusView(state=self.state, state_reason=self.reason, state_changed_by=self.changed_by,
                          state_changed_at=self.changed_at, mode="paper", venue="fake", quote="USD",
                          equity=Decimal("10000") + upnl, cash=Decimal("10000"), positions=positions,
                          today_pnl=upnl, data_age_s={p: 12.0 for p in self._pairs}, leader="fake-1",
                          instance_id="fake-1", uptime_s=3600.0, open_orders=0, unrealized=upnl,
                          today_pnl_pct=(upnl / Decimal("10000") * 100).quantize(Decimal("0.01")))

    async def positions(self) -> list[PositionView]:
        return list(self.open.values())

    async def balances(self) -> list[BalanceView]:
        return [BalanceView("USD", Decimal("10000"), Decimal("9000"), Decimal("10000"), "USD"),
                BalanceView("BTC", Decimal("0.5"), Decimal("0.5"), Decimal("20500"), "USD")]

    async def pnl(self, period: Period) -> PnlSummary:
        realized = sum((t.pnl for t in self.closed), ZERO)
        wins = sum(1 for t in self.closed if t.pnl > 0)
        n = len(self.closed)
        return PnlSummary(period=period, start=None if period == "all" else T0, realized=realized,
                          unrealized=sum((p.unrealized_pnl for p in self.open.values()), ZERO), fees=ZERO, trades=n,
                          wins=wins, losses=n - wins, win_rate=Decimal(wins) / n if n else None, profit_factor=None,
                          expectancy=realized / n if n else None, max_drawdown=ZERO, max_drawdown_pct=ZERO,
                          drawdown_start=None, drawdown_end=None, best_pair=None, worst_pair=None)

    async def periods(self, unit: PeriodUnit, count: int) -> list[PeriodPnl]:
        step = {"day": 1, "week": 7, "month": 30}[unit]
        return [PeriodPnl(start=date(2024, 1, 1) - timedelta(days=step * i), realized=ZERO, trades=0, fees=ZERO)
                for i in range(count)]

    async def trades(self, count: int) -> list[TradeView]:
        return list(reversed(self.closed))[:count]

    async def performance(self) -> list[PairPerformance]:
        by: dict[str, list[TradeView]] = {}
        for t in self.closed:
            by.setdefault(t.pair, []).append(t)
        return [PairPerformance(pair, len(ts), sum((t.pnl for t in ts), ZERO), None) for pair, ts in sorted(by.items())]

    async def health(self) -> HealthView:
        return HealthView(ok=True, components={"engine": "fake"}, counters={"scans": 0}, leader="fake-1 (epoch 1)",
                          instance_id="fake-1", uptime_s=3600.0)

    async def chart(self, days: int) -> bytes:
        """A stand-in image: the bytes say which request made them."""
        return b"\x89PNG\r\n\x1a\n" + f"equity {days} days".encode()

    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]:
        """No scheduler here: the fake has no jobs and no runs (as with ``schedule.enabled`` off)."""
        return [], []

    async def run_job(self, name: str) -> JobOutcome:
        raise ServiceUnavailable(f"no scheduled job named {name!r} (the fake has no scheduler)")

    def add_positions(self, *pairs: str) -> None:
        for pair in pairs:
            self.open[pair] = make_position(pair)

    def submitted(self) -> list[str]:
        """The intents that act, by name: a preview (what a confirmation shows) or a listing only reads."""
        return [type(i).__name__ for i in self.intents
                if not getattr(i, "preview", False) and type(i).__name__ not in READ_ONLY]

