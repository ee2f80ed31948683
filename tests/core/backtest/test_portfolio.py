"""Portfolio backtests: several pairs in one engine, trading exactly as the service's engine does."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
import typer
from sqlmodel import col, select
from typer.testing import CliRunner

from core.app.backtest_cli import register
from core.backtest.data import Bars, to_arrays
from core.backtest.model import RunSpec
from core.backtest.runner import run_engines
from core.settings.config import Settings
from core.trading import accounting
from core.trading.assembly import build_engine
from core.trading.events import EventBus
from exchanges.base import Candle
from exchanges.clock import SimClock
from exchanges.paper import MarketRules, PaperExchange
from exchanges.replay import ReplayFeed
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import PositionRow
from tests.core.backtest.conftest import cut
from tests.core.waiting import eventually

PAIRS = ("BTC/USD", "ETH/USD")
CENT = Decimal("0.01")


def eth_like(btc: Bars, lag: int) -> Bars:
    """A second USD pair on the same hours: BTC's candles from ``lag`` hours earlier, at a twentieth
    of the price (its own crosses, on the same clock)."""
    assert btc.candles is not None
    source = btc.candles
    out = []
    for i, c in enumerate(source):
        s = source[max(0, i - lag)]
        out.append(Candle(pair="ETH/USD", ts=c.ts, timeframe_s=c.timeframe_s, open=(s.open / 20).quantize(CENT),
                          high=(s.high / 20).quantize(CENT), low=(s.low / 20).quantize(CENT),
                          close=(s.close / 20).quantize(CENT), volume=s.volume * 20))
    candles = tuple(out)
    return Bars(arrays=to_arrays("ETH/USD", c.timeframe_s, candles), candles=candles)


def settings(max_open: int) -> Settings:
    """Risk sizing as configured by default, two pairs, one USD balance; the venue's rules explicit so
    the service and the backtest use the same ones."""
    return Settings(**{
        "trading": {"pairs": list(PAIRS), "timeframe": "1h", "quote": "USD", "scan_timeout_s": 120},
        "strategies": {"enabled": ["sma_cross"], "params": {"sma_cross": {"fast": 5, "slow": 12}}},
        "paper": {"starting_balances": {"USD": "10000"}, "price_tick": "0.01", "qty_step": "0.00000001",
                  "min_qty": "0.0001", "min_notional": "1", "slippage_bps": "5", "impact_bps": "50",
                  "volume_share": "1"},
        "risk": {"daily_loss_limit": "1", "max_drawdown": "1", "max_open_positions": max_open,
                 "max_pair_exposure": "0.5", "cooldown_after_loss_s": 0},
    })


@pytest.fixture(scope="module")
def series(bundled: Bars) -> tuple[Bars, Bars]:
    btc = cut(bundled, 13100, 13400)
    return btc, eth_like(btc, 7)


async def live_positions(s: Settings, series: tuple[Bars, Bars], tmp: Path) -> list[PositionRow]:
    """The service's way: the paper venue and the replay feed handed to the engine, which consumes the
    feed in its own task (with its protection loop running beside it) until the feed ends."""
    db = Database(f"sqlite:///{tmp}/live.db")
    await db.start()
    try:
        await upgrade(db)
        candles = {b.pair: b.candle_objects() for b in series}
        clock = SimClock(min(c[0].ts for c in candles.values()))
        p = s.paper
        rules = MarketRules(min_qty=p.min_qty, qty_step=p.qty_step, price_tick=p.price_tick,
                            min_notional=p.min_notional, maker_fee=p.maker_fee, taker_fee=p.taker_fee)
        exchange = PaperExchange(db, {pair: rules for pair in PAIRS}, starting_balances=p.starting_balances,
                                 slippage_bps=p.slippage_bps, impact_bps=p.impact_bps, volume_share=p.volume_share,
                                 clock=clock, timeframe_s=3600)
        await exchange.start()
        ended = asyncio.Event()
        engine = build_engine(s, db, exchange, ReplayFeed(candles, clock=clock, speed=0), clock, EventBus(),
                              market_hooks=(exchange.on_market_event,), on_feed_end=ended.set)
        await engine.start()
        await eventually(ended.is_set, timeout=120, what="the replay to end")
        await engine.stop()
        await exchange.stop()
        async with db.read() as session:
            return list((await session.exec(select(PositionRow).where(col(PositionRow.status).in_(
                ("open", "closed"))).order_by(col(PositionRow.id)))).all())
    finally:
        await db.stop()


@pytest.mark.slow
@pytest.mark.parametrize("max_open", [1, 2])
def test_a_two_pair_portfolio_trades_as_the_service_engine_does(series: tuple[Bars, Bars], tmp_path: Path,
                                                                max_open: int) -> None:
    s = settings(max_open)
    spec = RunSpec(sizing="risk", fill_on="last_close")
    run = asyncio.run(run_engines(s, series, spec))
    live = asyncio.run(live_positions(s, series, tmp_path))

    backtest = sorted(((t.pair, t.entry_time, t.exit_time, t.qty, t.entry_price, t.exit_price if t.closed else None)
                       for r in run.results for t in r.trades), key=lambda k: (k[1], k[0]))
    service = sorted(((p.pair, p.opened_at, p.closed_at if p.status == "closed" else None, p.entry_qty,
                       accounting.entry_price(p), accounting.exit_price(p) if p.status == "closed" else None)
                      for p in live), key=lambda k: (k[1], k[0]))
    assert backtest == service
    assert {t[0] for t in backtest} == set(PAIRS), "both pairs trade"
    held = sorted((t.entry_time, t.exit_time or t.entry_time.max, t.pair) for r in run.results for t in r.trades)
    overlapping = any(b[0] < a[1] for a, b in pairwise(held))
    if max_open == 1:
        # one open position across both pairs: the other pair's entries are refused meanwhile
        assert not overlapping
        assert any("entries refused by the risk checks" in n for n in run.portfolio.notes)
    else:
        assert overlapping, "with two slots both pairs are held at once somewhere in the run"
    assert run.portfolio.trades == sorted(run.portfolio.trades, key=lambda t: (t.entry_time, t.pair))
    assert len(run.portfolio.trades) == len(backtest)
    assert run.portfolio.end_equity == run.results[0].end_equity


def test_the_cli_runs_a_portfolio_from_repeated_pairs(series: tuple[Bars, Bars], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = []
    for bars in series:
        assert bars.candles is not None
        path = tmp_path / f"{bars.pair.replace('/', '-')}.csv"
        path.write_text("timestamp,open,high,low,close,volume\n" + "".join(
            f"{c.ts.isoformat()},{c.open},{c.high},{c.low},{c.close},{c.volume}\n" for c in bars.candles))
        files.append(path)
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is named as in tradectl
    register(app)
    out = CliRunner().invoke(app, ["backtest", "--pair", "BTC/USD", "--pair", "ETH/USD", "--csv", str(files[0]),
                                   "--csv", str(files[1]), "--strategy", "sma_cross", "--param", "sma_cross.fast=5",
                                   "--param", "sma_cross.slow=12", "--sizing", "risk", "--cash", "10000",
                                   "--out", "out", "-q"])
    assert out.exit_code == 0, out.output
    assert "portfolio BTC/USD, ETH/USD 1h" in out.output
    assert "mode: engine (a portfolio of 2 pairs runs in the engine)" in out.output
    lines = out.output.splitlines()
    assert any(line.split()[:1] == ["BTC/USD"] and line.split()[1].isdigit() for line in lines), out.output
    assert any(line.split()[:1] == ["ETH/USD"] and line.split()[1].isdigit() for line in lines), out.output
    assert (tmp_path / "out" / "BTC-USD+ETH-USD_1h_20181229-20190110_sma_cross_trades.csv").exists()

    one_csv = CliRunner().invoke(app, ["backtest", "--pair", "BTC/USD", "--pair", "ETH/USD", "--csv", str(files[0])])
    assert one_csv.exit_code == 2 and "give one per --pair" in one_csv.output


def test_pairs_quoted_in_different_currencies_are_refused(series: tuple[Bars, Bars]) -> None:
    btc, eth = series
    assert eth.candles is not None
    other = tuple(replace(c, pair="ETH/BTC") for c in eth.candles)
    eth_btc = Bars(arrays=to_arrays("ETH/BTC", 3600, other), candles=other)
    with pytest.raises(ValueError, match="one quote currency"):
        asyncio.run(run_engines(settings(2), (btc, eth_btc), RunSpec()))
