"""Pre-trade risk checks: every entry is approved, resized or rejected with a reason.

Spot, long-only. Sizing is fixed-fractional from the stop distance, capped by a fractional Kelly
bet once enough closed trades exist, then by per-pair and total exposure, available cash and the
venue's minimums. Daily-loss and drawdown limits are portfolio breakers checked by
:meth:`RiskManager.breach`; the engine turns a breach into an auto-pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.settings.settings_models import RiskSettings
from exchanges.base import Market


@dataclass(frozen=True, slots=True)
class Portfolio:
    equity: Decimal
    cash_available: Decimal
    exposure_by_pair: dict[str, Decimal]
    open_positions: int


@dataclass(frozen=True, slots=True)
class TradeStats:
    closed: int
    wins: int
    avg_win: Decimal
    avg_loss: Decimal  # positive number


@dataclass(frozen=True, slots=True)
class RiskDecision:
    approved: bool
    qty: Decimal
    stop: Decimal | None
    reason: str
    resized: bool = False


def _reject(reason: str) -> RiskDecision:
    return RiskDecision(False, Decimal(0), None, reason)


class RiskManager:
    def __init__(self, settings: RiskSettings) -> None:
        self.s = settings
        self._last_loss_exit: dict[str, datetime] = {}

    def record_exit(self, pair: str, pnl: Decimal, at: datetime) -> None:
        if pnl < 0:
            self._last_loss_exit[pair] = at

    def kelly_fraction(self, stats: TradeStats) -> Decimal | None:
        if stats.closed < self.s.kelly_min_trades or stats.avg_loss <= 0 or stats.avg_win <= 0:
            return None
        w = Decimal(stats.wins) / Decimal(stats.closed)
        r = stats.avg_win / stats.avg_loss
        return w - (1 - w) / r

    def check_entry(
        self,
        *,
        pair: str,
        price: Decimal,
        suggested_stop: Decimal | None,
        market: Market,
        portfolio: Portfolio,
        stats: TradeStats,
        now: datetime,
    ) -> RiskDecision:
        s = self.s
        if price <= 0:
            return _reject("no valid price")
        if pair in portfolio.exposure_by_pair and portfolio.exposure_by_pair[pair] > 0:
            return _reject("already holding a position in this pair")
        if portfolio.open_positions >= s.max_open_positions:
            return _reject(f"max open positions ({s.max_open_positions}) reached")
        last_loss = self._last_loss_exit.get(pair)
        if last_loss is not None and now - last_loss < timedelta(seconds=s.cooldown_after_loss_s):
            return _reject("cooling down after a losing exit")
        if portfolio.equity <= 0:
            return _reject("no equity")

        stop = suggested_stop if suggested_stop is not None and 0 < suggested_stop < price else None
        if stop is None:
            stop = price * (1 - s.default_stop_pct)
        stop = market.round_price(stop)
        distance = price - stop
        if distance <= 0:
            return _reject("stop is not below the price")
        qty = portfolio.equity * s.risk_per_trade / distance
        resized = False

        kelly = self.kelly_fraction(stats)
        if kelly is not None:
            if kelly <= 0:
                return _reject(f"negative edge over {stats.closed} closed trades (Kelly {kelly:.3f})")
            cap = portfolio.equity * kelly * s.kelly_fraction / price
            if qty > cap:
                qty, resized = cap, True

        pair_cap = portfolio.equity * s.max_pair_exposure / price
        if qty > pair_cap:
            qty, resized = pair_cap, True
        used = sum(portfolio.exposure_by_pair.values(), Decimal(0))
        room = portfolio.equity * s.max_total_exposure - used
        if room <= 0:
            return _reject("total exposure limit reached")
        if qty * price > room:
            qty, resized = room / price, True
        fee_headroom = 1 + market.taker_fee * 2
        cash_cap = portfolio.cash_available / (price * fee_headroom)
        if qty > cash_cap:
            qty, resized = cash_cap, True

        qty = market.round_qty(qty)
        if qty <= 0 or qty < market.min_qty:
            return _reject(f"size {qty} below the venue minimum {market.min_qty}")
        if qty * price < market.min_notional:
            return _reject(f"order value {qty * price:.2f} below the venue minimum {market.min_notional}")
        return RiskDecision(True, qty, stop, "approved" + (" (resized)" if resized else ""), resized)

    def breach(self, *, equity: Decimal, day_start_equity: Decimal, peak_equity: Decimal) -> str | None:
        """A portfolio limit that should pause entries, or None."""
        if day_start_equity > 0:
            day_loss = (day_start_equity - equity) / day_start_equity
            if day_loss >= self.s.daily_loss_limit:
                return f"daily loss {day_loss:.2%} reached the limit {self.s.daily_loss_limit:.2%}"
        if peak_equity > 0:
            dd = (peak_equity - equity) / peak_equity
            if dd >= self.s.max_drawdown:
                return f"drawdown {dd:.2%} from peak reached the limit {self.s.max_drawdown:.2%}"
        return None
