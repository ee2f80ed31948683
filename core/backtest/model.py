"""The values a backtest run produces, whichever mode ran it: the run's spec, trades, equity, result.

Both modes (:mod:`core.backtest.runner`, the engine itself; :mod:`core.backtest.fast`, the lean
loop) return the same :class:`BacktestResult`, so statistics, reports and the equivalence tests
never need to know which one ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

import numpy as np
import numpy.typing as npt

from core.settings.settings_models import BacktestSettings

Mode = Literal["engine", "fast"]
Sizing = Literal["risk", "fixed", "fraction"]
FillConvention = Literal["next_open", "last_close"]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What to simulate besides the service settings: sizing and the fill convention.

    ``sizing``: ``risk`` is the live :class:`~core.trading.risk.RiskManager`; ``fixed`` buys ``qty`` units
    per entry; ``fraction`` buys ``fraction`` of equity (capped by cash after fees). ``fill_on``:
    ``next_open`` fills a market order at the next candle's open, ``last_close`` at the signal
    candle's close. ``prescan``: engine mode skips the strategy scan on candles where no strategy's
    vectorized signal fires (:mod:`core.backtest.prescan`); False scans every candle.

    ``warmup``: the first ``warmup`` candles are history only (:mod:`core.backtest.warmup`). Strategies
    and indicators see them, but no order is placed before the next candle, and the result (trades,
    their bar numbers, equity, statistics) covers the candles from there on, as a run given only those
    would report it. One pair only.
    """

    sizing: Sizing = "risk"
    qty: Decimal = Decimal(1)
    fraction: Decimal = Decimal("0.95")
    fill_on: FillConvention = "next_open"
    resume_after_pause: Literal["next_day", "never"] = "next_day"
    prescan: bool = True
    warmup: int = 0

    @classmethod
    def from_settings(cls, b: BacktestSettings) -> RunSpec:
        return cls(sizing=b.sizing, qty=b.qty, fraction=b.fraction, fill_on=b.fill_on,
                   resume_after_pause=b.resume_after_pause)


@dataclass(frozen=True, slots=True)
class Trade:
    """One position from its first entry fill to its last exit fill.

    Bars are indexes into the candles the run was given. ``entry_time``/``exit_time`` are when the
    fill price was quoted: the fill candle's open (``next_open``) or the signal candle's close
    (``last_close``). A position still open at the end has ``exit_bar = None`` and is marked at
    the last close: ``exit_price`` is that close, ``pnl`` is unrealized and net of entry fees only,
    ``exit_reason`` is ``"open"``.
    """

    pair: str
    entry_bar: int
    exit_bar: int | None
    entry_time: datetime
    exit_time: datetime | None
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    exit_reason: str

    @property
    def closed(self) -> bool:
        return self.exit_bar is not None

    def key(self) -> tuple[int, int | None, Decimal, Decimal, Decimal]:
        """What two runs must agree on to have made "the same trade"."""
        return (self.entry_bar, self.exit_bar, self.qty, self.entry_price, self.exit_price)


@dataclass(frozen=True, slots=True)
class Pause:
    """Entries paused by a risk breaker during the run, and when they resumed (None: never)."""

    at: datetime
    reason: str
    resumed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TradeTable:
    """The trades as float columns, for statistics over many thousands of trades without ``Decimal``.

    ``exit_bar`` is -1 for a position still open at the end; ``cost`` is what the entry paid,
    fees included.
    """

    entry_bar: npt.NDArray[np.int64]
    exit_bar: npt.NDArray[np.int64]
    pnl: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    fees: npt.NDArray[np.float64]

    @classmethod
    def from_trades(cls, trades: Sequence[Trade]) -> TradeTable:
        n = len(trades)
        return cls(entry_bar=np.fromiter((t.entry_bar for t in trades), dtype=np.int64, count=n),
                   exit_bar=np.fromiter((-1 if t.exit_bar is None else t.exit_bar for t in trades),
                                        dtype=np.int64, count=n),
                   pnl=np.fromiter((float(t.pnl) for t in trades), dtype=np.float64, count=n),
                   cost=np.fromiter((float(t.qty * t.entry_price) for t in trades), dtype=np.float64, count=n),
                   fees=np.fromiter((float(t.fees) for t in trades), dtype=np.float64, count=n))

    def __len__(self) -> int:
        return int(self.pnl.shape[0])


class BacktestResult:
    """Trades, the per-bar equity curve (at each candle's close) and what the run noticed.

    ``trades`` are exact (``Decimal``); a fast run keeps them as integer records and makes each
    :class:`Trade` when it is read (:mod:`core.backtest.fasttrades`), while its statistics read
    ``table``. ``notes`` say where a result should be read with care (a fast run that met a situation
    it does not model exactly, an order left unfilled).
    """

    def __init__(self, *, mode: Mode, pair: str, timeframe_s: int, start_equity: Decimal, end_equity: Decimal,
                 equity_ts: npt.NDArray[np.int64], equity: npt.NDArray[np.float64],
                 in_position: npt.NDArray[np.bool_], bars: int, trades: Sequence[Trade],
                 table: TradeTable | None = None) -> None:
        self.mode, self.pair, self.timeframe_s, self.bars = mode, pair, timeframe_s, bars
        self.start_equity, self.end_equity = start_equity, end_equity
        self.equity_ts, self.equity, self.in_position = equity_ts, equity, in_position
        self.trades = trades
        self.table = table if table is not None else TradeTable.from_trades(trades)
        self.elapsed_s = 0.0
        self.exact = True
        self.notes: list[str] = []
        self.pauses: list[Pause] = []
        self.params: dict[str, object] = {}

    @property
    def bars_per_s(self) -> float:
        return self.bars / self.elapsed_s if self.elapsed_s > 0 else float("inf")
