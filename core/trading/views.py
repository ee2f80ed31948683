"""Read-only views the command layer asks for. Plain frozen data: no markup, no ORM rows.

:class:`TradingService` is everything the chat command core may call: queries and ``submit``.
The engine implements it; the command core never touches the database or engine internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol

from core.trading.events import Event
from core.trading.intents import Intent, IntentResult
from core.trading.state import TradingStatus
from exchanges.errors import TradectlError


class ServiceUnavailable(TradectlError):
    """This instance cannot answer now (a standby, or leadership is changing hands).

    The message is safe to show in chat; the command layer shows it as it is.
    """


Period = Literal["today", "week", "month", "all"]
PeriodUnit = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class PositionView:
    pair: str
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    unrealized_pnl: Decimal
    unrealized_pct: Decimal
    stop: Decimal | None
    take_profit: Decimal | None
    opened_at: datetime
    strategy: str
    qty_step: Decimal | None = None  # the market's rules, so a reply shows figures as the venue counts them
    price_tick: Decimal | None = None

    @property
    def quote(self) -> str:
        return self.pair.rpartition("/")[2]

    @property
    def value(self) -> Decimal:
        """What the position is worth now, in the quote currency (at the entry price without a mark)."""
        return self.qty * (self.mark_price if self.mark_price is not None else self.entry_price)


@dataclass(frozen=True, slots=True)
class BalanceView:
    currency: str
    total: Decimal
    available: Decimal
    value_in_quote: Decimal | None
    quote: str = ""  # the currency value_in_quote is counted in


@dataclass(frozen=True, slots=True)
class StatusView:
    state: TradingStatus
    state_reason: str
    state_changed_by: str
    state_changed_at: datetime | None
    mode: str
    venue: str
    quote: str
    equity: Decimal
    cash: Decimal
    positions: tuple[PositionView, ...]
    today_pnl: Decimal
    data_age_s: dict[str, float | None]
    leader: str | None
    instance_id: str
    uptime_s: float
    open_orders: int
    unrealized: Decimal = Decimal(0)  # total over the open positions
    today_pnl_pct: Decimal | None = None  # today's PnL against the equity the day started with
    paper_label: str = ""  # "PAPER · live Kraken prices" when paper trades on a live feed


@dataclass(frozen=True, slots=True)
class PnlSummary:
    period: str
    start: datetime | None
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    profit_factor: Decimal | None
    expectancy: Decimal | None
    max_drawdown: Decimal
    max_drawdown_pct: Decimal
    drawdown_start: datetime | None
    drawdown_end: datetime | None
    best_pair: str | None
    worst_pair: str | None
    quote: str = ""  # the currency every amount above is counted in


@dataclass(frozen=True, slots=True)
class PeriodPnl:
    start: date
    realized: Decimal
    trades: int
    fees: Decimal
    quote: str = ""


@dataclass(frozen=True, slots=True)
class TradeView:
    pair: str
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal | None
    pnl: Decimal
    pnl_pct: Decimal
    fees: Decimal
    opened_at: datetime
    closed_at: datetime | None
    exit_reason: str
    qty_step: Decimal | None = None
    price_tick: Decimal | None = None

    @property
    def quote(self) -> str:
        return self.pair.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class PairPerformance:
    pair: str
    trades: int
    pnl: Decimal
    win_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class HealthView:
    ok: bool
    components: dict[str, str]
    counters: dict[str, int] = field(default_factory=dict)
    rss_mb: float | None = None
    # infrastructure, moved here from /status: which instance leads, which one answered, since when
    leader: str | None = None
    instance_id: str = ""
    uptime_s: float | None = None


class TradingService(Protocol):
    """What the chat command core may ask of the trading core."""

    @property
    def pairs(self) -> tuple[str, ...]: ...

    async def submit(self, intent: Intent) -> IntentResult: ...
    async def status(self) -> StatusView: ...
    async def positions(self) -> list[PositionView]: ...
    async def balances(self) -> list[BalanceView]: ...
    async def pnl(self, period: Period) -> PnlSummary: ...
    async def periods(self, unit: PeriodUnit, count: int) -> list[PeriodPnl]: ...
    async def trades(self, count: int) -> list[TradeView]: ...
    async def performance(self) -> list[PairPerformance]: ...
    async def health(self) -> HealthView: ...


@dataclass(frozen=True, slots=True)
class JobView:
    """A scheduled job: its schedule in words and its next run (in the schedule's time zone)."""

    name: str
    schedule: str
    next_run: datetime | None


@dataclass(frozen=True, slots=True)
class JobRunSummary:
    name: str
    scheduled_for: datetime
    status: str


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """A job run now (/report): its outcome (``finished``, ``failed``, ``skipped``, ...) and what it
    produced, so the person who asked sees the report itself (with its chart), not only "finished"."""

    status: str
    events: tuple[Event, ...] = ()


class ReportService(Protocol):
    """Charts and the schedule, for /chart, /schedule and /report."""

    async def chart(self, days: int) -> bytes: ...
    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]: ...
    async def run_job(self, name: str) -> JobOutcome: ...
