"""Fast mode's integer trade records read as the very trades the per-fill Decimal construction made.

The reference below is the construction fast mode used before its trades became integer records:
each fill priced and charged with the paper venue's own ``Decimal`` functions. Every field must be
equal, and every ``Decimal`` must have the same digits and exponent (so reports print the same).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from core.backtest.data import Bars, synthetic
from core.backtest.fast import CENTS, Q, price_fill, run_fast
from core.backtest.fastloop import Venue
from core.backtest.fasttrades import FastTrades
from core.backtest.model import BacktestResult, RunSpec, Trade
from core.backtest.runner import market_rules, run_settings
from core.settings.config import Settings
from core.trading.accounting import price_q
from exchanges.base import Side
from tests.core.backtest.conftest import make_settings, reference_settings
from tests.core.backtest.test_markets import eth_btc

FIELDS = ("entry_bar", "exit_bar", "entry_time", "exit_time", "qty", "entry_price", "exit_price", "fees", "pnl",
          "pnl_pct", "exit_reason", "pair")


def per_fill(settings: Settings, bars: Bars, qty: Decimal, f: int, g: int | None) -> Trade:
    """One round trip built fill by fill in ``Decimal`` (fast mode's construction before the records)."""
    settings = run_settings(settings, bars)
    p = settings.paper
    venue = Venue(market_rules(settings).market(bars.pair), p.slippage_bps, p.impact_bps, p.volume_share)
    ts = bars.arrays.ts.tolist()
    last_close = bars.price(len(bars) - 1, "close")
    buy = price_fill(bars, f, Side.BUY, qty, venue)
    cost = qty * buy.price + buy.fee
    if g is None:
        pnl, exit_price, exit_time, fees = qty * last_close - cost, last_close, None, buy.fee
    else:
        sell = price_fill(bars, g, Side.SELL, qty, venue)
        pnl, exit_price, fees = qty * sell.price - sell.fee - cost, price_q(sell.price), buy.fee + sell.fee
        exit_time = datetime.fromtimestamp(ts[g], UTC)
    return Trade(pair=bars.pair, entry_bar=f, exit_bar=g, entry_time=datetime.fromtimestamp(ts[f], UTC),
                 exit_time=exit_time, qty=qty, entry_price=price_q(buy.price), exit_price=exit_price, fees=fees,
                 pnl=pnl.quantize(Q), pnl_pct=(pnl / cost * 100).quantize(CENTS),
                 exit_reason="exit" if g is not None else "open")


def satoshi_walk(n: int, seed: int) -> Bars:
    """Array-only ETH/BTC candles near 0.05 BTC with prices of 8 decimals."""
    a = synthetic(n, seed=seed, pair="ETH/BTC").arrays
    sat = {name: np.round(getattr(a, name) / 200_000, 8) for name in ("open", "high", "low", "close")}
    return Bars(arrays=replace(a, **sat))


def same_digits(ours: Trade, theirs: Trade) -> None:
    for name in FIELDS:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a == b, (name, ours, theirs)
        if isinstance(a, Decimal):
            assert a.as_tuple() == b.as_tuple(), (name, a, b)


def check(settings: Settings, bars: Bars, qty: Decimal) -> BacktestResult:
    result = run_fast(settings, bars, RunSpec(sizing="fixed", qty=qty))
    trades = result.trades
    assert isinstance(trades, FastTrades)  # the integer records, not the general loop
    assert len(trades) >= 20
    for t in trades:
        same_digits(t, per_fill(settings, bars, qty, t.entry_bar, t.exit_bar))
    assert trades[-1] is trades[len(trades) - 1] and trades[1:3] == [trades[1], trades[2]]
    assert trades == list(trades) and list(trades) == trades
    # the end equity is exact: the starting cash plus every trade's PnL
    cash = run_settings(settings, bars).paper.starting_balances[bars.pair.split("/")[1]]
    assert result.end_equity == sum((t.pnl for t in trades), cash)
    return result


def test_no_slippage_whole_units_on_a_random_walk() -> None:
    check(reference_settings(10, 30), synthetic(20_000, seed=3), Decimal(1))


def test_slippage_impact_and_fractional_quantity_on_a_random_walk() -> None:
    settings = make_settings("sma_cross", {"fast": 5, "slow": 20},
                             paper={"slippage_bps": "5", "impact_bps": "7.5", "taker_fee": "0.0026",
                                    "starting_balances": {"USD": "1000000"}},
                             risk={"cooldown_after_loss_s": 0})
    check(settings, synthetic(10_000, seed=5), Decimal("0.12345678"))


def test_real_candles(traded: Bars) -> None:
    check(reference_settings(10, 30), traded, Decimal(1))
    check(make_settings("sma_cross", {"fast": 10, "slow": 30}, paper={"starting_balances": {"USD": "1000000"}},
                        risk={"cooldown_after_loss_s": 0}), traded, Decimal("0.37"))


@pytest.mark.parametrize("synthetic_candles", [False, True])
def test_btc_quoted_pair(synthetic_candles: bool) -> None:
    """Prices in satoshis on the pair's own tick, fees in BTC: real (Decimal) candles and array-only ones."""
    bars = satoshi_walk(6_000, seed=11) if synthetic_candles else eth_btc(6_000)
    settings = make_settings("sma_cross", {"fast": 5, "slow": 12},
                             paper={"starting_balances": {"BTC": "100"}, "min_notional": "0", "min_qty": "0.001"},
                             risk={"cooldown_after_loss_s": 0})
    result = check(settings, bars, Decimal("0.731"))
    assert any(t.entry_price % Decimal("0.01") for t in result.trades)


def test_end_equity_is_exact_with_many_trades() -> None:
    """Thousands of trades (the records are not built to sum them): still the exact sum of their PnL."""
    bars = synthetic(40_000, seed=8)
    settings = reference_settings(2, 5)
    result = run_fast(settings, bars, RunSpec(sizing="fixed", qty=Decimal("0.5")))
    assert len(result.trades) > 2_000
    assert result.end_equity == sum((t.pnl for t in result.trades), Decimal(1_000_000))
