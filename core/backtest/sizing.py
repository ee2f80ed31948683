"""Backtest sizing rules that replace the live risk manager's position sizing, and nothing else.

The live :class:`~core.trading.risk.RiskManager` sizes from the stop distance, caps by a Kelly bet and by
exposure, and sets a default stop. That is what a backtest should use by default (sizing ``risk``),
but it makes a trade-for-trade comparison with another backtester impossible: no other tool sizes
that way. :class:`PlainSizing` keeps every *rule* of an entry (one position per pair, the open
positions limit, the cool-down after a loss, no equity, venue minimums) and replaces the *size*:

- ``fixed``: ``qty`` units per entry (``1`` = one whole coin), refused when cash cannot pay for it
  and twice the taker fee (other backtesters cancel such an order too);
- ``fraction``: ``fraction`` of equity at the signal's price, capped by cash after twice the fee.

Stops: only a stop the strategy suggests is used (no default stop), so a strategy that suggests
none, like ``sma_cross``, exits only on its own signal. The breakers (daily loss, drawdown) are
inherited unchanged from :class:`RiskManager`.

:func:`plain_entry` is the same decision as a plain function so that the fast loop
(:mod:`core.backtest.fast`) calls the very code the engine calls through :class:`PlainSizing`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from core.backtest.model import Sizing
from core.settings.settings_models import RiskSettings
from core.trading.risk import Portfolio, RiskDecision, RiskManager, TradeStats
from exchanges.base import Market

ZERO = Decimal(0)


def _reject(reason: str) -> RiskDecision:
    return RiskDecision(False, ZERO, None, reason)


def plain_entry(*, sizing: Sizing, qty: Decimal, fraction: Decimal, price: Decimal, equity: Decimal,
                cash: Decimal, market: Market) -> RiskDecision:
    """The size of one entry under ``fixed`` or ``fraction`` sizing (no stop: see the module doc)."""
    if price <= 0:
        return _reject("no valid price")
    if equity <= 0:
        return _reject("no equity")
    cost_per_unit = price * (1 + market.taker_fee * 2)
    if sizing == "fixed":
        size = market.round_qty(qty)
        if size * cost_per_unit > cash:
            return _reject(f"cash {cash} cannot pay for {size} at {price}")
    elif sizing == "fraction":
        size = market.round_qty(min(equity * fraction / price, cash / cost_per_unit))
    else:
        raise ValueError(f"plain sizing is fixed or fraction, not {sizing!r}")
    if size <= 0 or size < market.min_qty:
        return _reject(f"size {size} below the venue minimum {market.min_qty}")
    if size * price < market.min_notional:
        return _reject(f"order value {size * price:.2f} below the venue minimum {market.min_notional}")
    return RiskDecision(True, size, None, "approved")


class PlainSizing(RiskManager):
    """The live entry rules with ``fixed`` or ``fraction`` sizing; see the module docstring."""

    def __init__(self, settings: RiskSettings, *, sizing: Sizing, qty: Decimal, fraction: Decimal) -> None:
        if sizing not in ("fixed", "fraction"):
            raise ValueError(f"PlainSizing sizes fixed or fraction, not {sizing!r}")
        super().__init__(settings)
        self.sizing: Sizing = sizing
        self.qty = qty
        self.fraction = fraction

    def check_entry(self, *, pair: str, price: Decimal, suggested_stop: Decimal | None, market: Market,
                    portfolio: Portfolio, stats: TradeStats, now: datetime) -> RiskDecision:
        if pair in portfolio.exposure_by_pair and portfolio.exposure_by_pair[pair] > 0:
            return _reject("already holding a position in this pair")
        if portfolio.open_positions >= self.s.max_open_positions:
            return _reject(f"max open positions ({self.s.max_open_positions}) reached")
        last_loss = self._last_loss_exit.get(pair)
        if last_loss is not None and now - last_loss < timedelta(seconds=self.s.cooldown_after_loss_s):
            return _reject("cooling down after a losing exit")
        decision = plain_entry(sizing=self.sizing, qty=self.qty, fraction=self.fraction, price=price,
                               equity=portfolio.equity, cash=portfolio.cash_available, market=market)
        if not decision.approved:
            return decision
        stop = suggested_stop if suggested_stop is not None and 0 < suggested_stop < price else None
        return RiskDecision(True, decision.qty, market.round_price(stop) if stop is not None else None, "approved")
