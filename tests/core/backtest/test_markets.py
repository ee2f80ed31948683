"""Market rules and money follow the pair: a BTC-quoted pair backtests with default settings, both modes
agree on it, its amounts print in satoshis and its chart reads."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.app.backtest_cli import register
from core.backtest.api import run_backtest
from core.backtest.data import Bars, synthetic, to_arrays
from core.backtest.fast import run_fast
from core.backtest.markets import RECORDED, money, quote_decimals
from core.backtest.model import RunSpec
from core.backtest.report import equity_points
from core.backtest.runner import pair_rules, run_engine
from core.settings.config import Settings
from exchanges.base import Candle
from tests.core.backtest.conftest import make_settings
from tests.core.backtest.test_equivalence import assert_equivalent

CENT = Decimal("0.01")
FRACTION = RunSpec(sizing="fraction", fraction=Decimal("0.5"))


def eth_btc(n: int = 400, seed: int = 11) -> Bars:
    """An ETH/BTC-like hourly series: prices near 0.05 BTC on a 0.00000005 grid, volume in ETH."""
    walk = synthetic(n, seed=seed, pair="ETH/BTC", vol=0.01)
    a = walk.arrays

    def price(x: float) -> Decimal:
        return Decimal(round(x * 100)) * Decimal("0.00000005")

    candles = tuple(Candle(pair="ETH/BTC", timeframe_s=3600, ts=walk.time(i), open=price(a.open[i]),
                           high=price(a.high[i]), low=price(a.low[i]), close=price(a.close[i]),
                           volume=Decimal(repr(float(a.volume[i])))) for i in range(n))
    return Bars(arrays=to_arrays("ETH/BTC", 3600, candles), candles=candles, source="ETH/BTC-like walk")


def btc_settings(**paper: str) -> Settings:
    """Default settings except one strategy, loose breakers and starting cash in BTC."""
    return make_settings("sma_cross", {"fast": 5, "slow": 12}, paper={"starting_balances": {"BTC": "1"}, **paper})


@pytest.mark.slow
def test_fast_and_engine_agree_on_a_btc_quoted_pair_with_default_settings() -> None:
    bars, settings = eth_btc(), btc_settings()
    engine = asyncio.run(run_engine(settings, bars, FRACTION))
    fast = run_fast(settings, bars, FRACTION)
    assert_equivalent(fast, engine)
    assert len(engine.trades) >= 5
    # filled on the pair's own tick, not the 0.01 default
    assert any(t.entry_price % CENT for t in engine.trades)
    assert engine.end_equity > Decimal("0.5")


@pytest.mark.slow
def test_engine_mode_counts_equity_in_the_pair_quote() -> None:
    """trading.quote (USD by default) no longer values a BTC balance at nothing."""
    outcome = run_backtest(btc_settings(), eth_btc(), FRACTION, "engine", progress=False)
    assert outcome.result.mode == "engine"
    assert outcome.stats.start_equity == 1.0
    assert outcome.stats.return_pct > -50
    assert outcome.stats.end_equity == pytest.approx(float(outcome.result.end_equity))


def test_rules_come_from_the_recorded_markets_else_the_data_else_what_is_set() -> None:
    bars = eth_btc(50)
    inferred = pair_rules(btc_settings(), bars)
    assert inferred.rules.price_tick == Decimal("0.00000001")
    assert inferred.rules.min_notional == 0  # the 5 (USD) default would refuse every BTC-sized order
    assert inferred.origin["price_tick"] == "inferred from the candles' prices"
    set_by_user = pair_rules(btc_settings(price_tick="0.0001", min_notional="0.001"), bars)
    assert (set_by_user.rules.price_tick, set_by_user.rules.min_notional) == (Decimal("0.0001"), Decimal("0.001"))
    usdt = pair_rules(btc_settings(), synthetic(50, seed=1, pair="ADA/USDT"))
    assert (usdt.rules.price_tick, usdt.rules.qty_step, usdt.rules.min_qty) == (
        Decimal("0.0001"), Decimal("0.01"), Decimal("0.01"))
    assert usdt.origin["min_qty"] == "coinbase market data"
    kraken = pair_rules(btc_settings().model_copy(update={"trading": btc_settings().trading.model_copy(
        update={"venue": "kraken"})}), synthetic(50, seed=1, pair="ADA/USDT"))
    assert (kraken.rules.price_tick, kraken.rules.min_qty) == (Decimal("0.000001"), Decimal("20"))
    unknown_usd = pair_rules(btc_settings(), synthetic(50, seed=1, pair="SOL/USD"))
    assert unknown_usd.rules.min_notional == Decimal("5") and unknown_usd.rules.price_tick == CENT


def test_recorded_table_is_what_the_venue_adapters_read_from_the_recorded_metadata() -> None:
    from exchanges.coinbase.symbols import CoinbaseSymbols
    from exchanges.kraken.symbols import KrakenSymbols
    from tests.exchanges.fixtures import coinbase_products, kraken_asset_pairs

    for venue, markets in (("kraken", KrakenSymbols.from_asset_pairs(kraken_asset_pairs()).markets()),
                           ("coinbase", CoinbaseSymbols.from_products(coinbase_products()).markets())):
        got = {pair: (r.price_tick, r.qty_step, r.min_qty, r.min_notional) for pair, r in RECORDED[venue].items()}
        assert got == {pair: (m.price_tick, m.qty_step, m.min_qty, m.min_notional) for pair, m in markets.items()}


def test_money_has_the_quote_currency_decimals_as_the_bot_shows_them() -> None:
    from bot.format import currency_decimals

    for code in ("USD", "usdt", "EUR", "ZUSD", "BTC", "ETH", "JPY", "XYZ", ""):
        assert quote_decimals(code) == currency_decimals(code), code
    assert money(0.0123, "BTC") == "0.01230000 BTC"
    assert money(1234.5, "USD") == "1,234.50 USD"
    assert money(-0.0, "USD") == "0.00 USD"


def test_cli_prints_btc_amounts_in_satoshis_and_the_rules_used(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bars = eth_btc(300)
    assert bars.candles is not None
    path = tmp_path / "eth.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{int(c.ts.timestamp()) * 1000},{c.open},{c.high},{c.low},{c.close},{c.volume}\n" for c in bars.candles))
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is named as in tradectl
    register(app)
    run = CliRunner().invoke(app, ["backtest", "--csv", str(path), "--pair", "ETH/BTC", "--strategy", "sma_cross",
                                   "--param", "sma_cross.fast=5", "--param", "sma_cross.slow=12", "--sizing",
                                   "fraction", "--cash", "1", "--step", "0.001", "--out", "out", "-q"])
    assert run.exit_code == 0, run.output
    assert re.search(r"fees paid  0\.\d{8} BTC\n", run.output), run.output
    assert re.search(r"equity  1\.00000000 BTC -> \d\.\d{8} BTC\n", run.output), run.output
    assert "price tick 0.00000001 (inferred from the candles' prices), qty step 0.001 (set)" in run.output


def test_chart_of_a_small_btc_curve_keeps_its_digits() -> None:
    from core.ops.charts import equity_figure

    result = run_fast(btc_settings(), eth_btc(), FRACTION)
    points = equity_points(result, quote="BTC")
    assert len({v for _, v in points}) > 10
    assert any(v != v.quantize(CENT) for _, v in points)
    fig = equity_figure(points, "ETH/BTC", quote="BTC")
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
