"""Statistics of a backtest result: the figures ``tradectl backtest`` prints and ``tune`` ranks by.

Computed with numpy from the result's float trade table and equity curve, so a million-candle run
is summarised in milliseconds. The Sharpe ratio is :func:`core.trading.accounting.sharpe`'s formula (per-bar
returns of equity, sample standard deviation, annualised for the bar interval over a 365-day year);
the drawdown is the largest peak-to-trough fall of equity at candle closes, as
:func:`core.trading.accounting.max_drawdown` measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from core.backtest.markets import money
from core.backtest.model import BacktestResult

METRICS = ("sharpe", "return", "profit_factor", "expectancy", "win_rate", "max_drawdown", "trades")


@dataclass(frozen=True, slots=True)
class BacktestStats:
    """Summary figures. Percentages are in percent; money is in the quote currency."""

    start: datetime
    end: datetime
    bars: int
    start_equity: float
    end_equity: float
    return_pct: float
    buy_hold_pct: float
    trades: int
    open_trades: int
    wins: int
    win_rate_pct: float | None
    profit_factor: float | None
    expectancy: float | None
    max_drawdown_pct: float
    max_drawdown: float
    drawdown_peak: datetime | None
    drawdown_trough: datetime | None
    sharpe: float | None
    fees: float
    exposure_pct: float

    def metric(self, name: str) -> float:
        """The value ``tune`` ranks by, larger is better (drawdown is negated); -inf when undefined."""
        value = {"sharpe": self.sharpe, "return": self.return_pct, "profit_factor": self.profit_factor,
                 "expectancy": self.expectancy, "win_rate": self.win_rate_pct,
                 "max_drawdown": -self.max_drawdown_pct, "trades": float(self.trades)}[name]
        return -math.inf if value is None or math.isnan(value) else float(value)

    def rows(self, quote: str = "") -> list[tuple[str, str]]:
        """(label, value) lines for display; amounts with ``quote``'s decimals (8 for BTC, 2 for USD)."""
        def opt(value: float | None, fmt: str) -> str:
            return "n/a" if value is None else format(value, fmt)

        dd_when = (f" ({self.drawdown_peak:%Y-%m-%d %H:%M} -> {self.drawdown_trough:%Y-%m-%d %H:%M} UTC)"
                   if self.drawdown_peak and self.drawdown_trough else "")
        return [
            ("period", f"{self.start:%Y-%m-%d %H:%M} -> {self.end:%Y-%m-%d %H:%M} UTC, {self.bars} candles"),
            ("equity", f"{money(self.start_equity, quote)} -> {money(self.end_equity, quote)}"),
            ("return", f"{self.return_pct:+.2f}% (buy and hold {self.buy_hold_pct:+.2f}%)"),
            ("trades", f"{self.trades} closed" + (f", {self.open_trades} open at the end" if self.open_trades else "")),
            ("win rate", opt(self.win_rate_pct, ".1f") + ("%" if self.win_rate_pct is not None else "")),
            ("profit factor", opt(self.profit_factor, ".2f")),
            ("expectancy",
             money(self.expectancy, quote) + (" per trade" if self.expectancy is not None else "")),
            ("max drawdown", f"{self.max_drawdown_pct:.2f}% ({money(self.max_drawdown, quote)}){dd_when}"),
            ("sharpe", opt(self.sharpe, ".2f") + " (annualised)"),
            ("fees paid", money(self.fees, quote)),
            ("exposure", f"{self.exposure_pct:.1f}% of candles in a position"),
        ]


def _time(ts: int) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def sharpe(equity: np.ndarray, bar_seconds: int) -> float | None:
    """:func:`core.trading.accounting.sharpe` on an array."""
    if equity.size < 3:
        return None
    prev, cur = equity[:-1], equity[1:]
    ok = prev > 0
    rets = cur[ok] / prev[ok] - 1.0
    if rets.size < 2:
        return None
    sd = float(rets.std(ddof=1))
    if not sd > 0:
        return None
    return float(rets.mean()) / sd * math.sqrt(365 * 86400 / bar_seconds)


def drawdown(equity: np.ndarray) -> tuple[float, float, int | None, int | None]:
    """(amount, percent, peak index, trough index) of the largest fall from a running peak."""
    if equity.size == 0:
        return 0.0, 0.0, None, None
    peak = np.maximum.accumulate(equity)
    fall = peak - equity
    trough = int(np.argmax(fall))
    if fall[trough] <= 0:
        return 0.0, 0.0, None, None
    peak_at = int(np.flatnonzero(equity[:trough + 1] == peak[trough])[0])
    return float(fall[trough]), float(fall[trough] / peak[trough] * 100), peak_at, trough


def compute(result: BacktestResult, first_close: float, last_close: float) -> BacktestStats:
    t = result.table
    closed = t.exit_bar >= 0
    pnl = t.pnl[closed]
    n = int(pnl.size)
    wins = int((pnl > 0).sum())
    gross_win = float(pnl[pnl > 0].sum())
    gross_loss = float(-pnl[pnl <= 0].sum())
    amount, pct, peak_at, trough = drawdown(result.equity)
    start_eq, end_eq = float(result.start_equity), float(result.end_equity)
    ts = result.equity_ts
    open_ts = int(ts[0]) - result.timeframe_s if ts.size else 0
    return BacktestStats(
        start=_time(open_ts), end=_time(int(ts[-1]) if ts.size else 0), bars=result.bars,
        start_equity=start_eq, end_equity=end_eq,
        return_pct=(end_eq / start_eq - 1) * 100 if start_eq > 0 else 0.0,
        buy_hold_pct=(last_close / first_close - 1) * 100 if first_close > 0 else 0.0,
        trades=n, open_trades=int((~closed).sum()), wins=wins,
        win_rate_pct=wins / n * 100 if n else None,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
        expectancy=float(pnl.mean()) if n else None,
        max_drawdown_pct=pct, max_drawdown=amount,
        drawdown_peak=_time(int(ts[peak_at])) if peak_at is not None else None,
        drawdown_trough=_time(int(ts[trough])) if trough is not None else None,
        sharpe=sharpe(result.equity, result.timeframe_s), fees=float(t.fees.sum()),
        exposure_pct=float(result.in_position.mean() * 100) if result.in_position.size else 0.0,
    )


def first_breach(result: BacktestResult, *, daily_loss_limit: float, max_drawdown: float, timezone: str,
                 since: int = 0) -> str | None:
    """The first candle close where the engine's breakers (daily loss, drawdown) would trip, or None.

    The engine compares each close's equity with the first close of the same local day and with the
    running peak (:meth:`core.trading.risk.RiskManager.breach`). ``since``: the first close it checks
    (a warm-up's closes count towards the day start and the peak, but entries are paused then).
    """
    eq, ts = result.equity, result.equity_ts
    if eq.size == 0:
        return None
    peak = np.maximum.accumulate(eq)
    dd = np.divide(peak - eq, peak, out=np.zeros_like(eq), where=peak > 0)
    days = ts // 86400
    if timezone != "UTC":
        zone = ZoneInfo(timezone)
        unique, inverse = np.unique(days, return_inverse=True)
        # utcoffset() is None only for a naive datetime; _time gives an aware one
        offsets = np.array([_time(int(d) * 86400).astimezone(zone).utcoffset().total_seconds()  # type: ignore[union-attr]
                            for d in unique], dtype=np.int64)
        days = (ts + offsets[inverse]) // 86400
    first = np.r_[True, days[1:] != days[:-1]]
    day_start = eq[np.maximum.accumulate(np.where(first, np.arange(eq.size), 0))]
    loss = np.divide(day_start - eq, day_start, out=np.zeros_like(eq), where=day_start > 0)
    hits = []
    daily = np.flatnonzero(loss[since:] >= daily_loss_limit) + since
    if daily.size:
        hits.append((int(daily[0]), f"daily loss {loss[daily[0]]:.2%}"))
    deep = np.flatnonzero(dd[since:] >= max_drawdown) + since
    if deep.size:
        hits.append((int(deep[0]), f"drawdown {dd[deep[0]]:.2%}"))
    if not hits:
        return None
    i, what = min(hits)
    return f"{what} at {_time(int(ts[i])):%Y-%m-%d %H:%M} UTC"
