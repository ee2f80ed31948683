"""``tradectl backtest`` with several pairs: the portfolio run's printout and files.

Called by :func:`core.app.backtest_cli.backtest` when more than one pair is traded; the run itself is
:func:`core.backtest.api.run_portfolio` (one engine, shared cash and risk limits).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from core.backtest.data import Bars
from core.backtest.markets import money
from core.backtest.model import RunSpec
from core.settings.config import Settings

EXIT_FAIL, EXIT_USAGE = 1, 2


def stem(series: tuple[Bars, ...], timeframe: str, strategies: tuple[str, ...]) -> str:
    """``BTC-USD+ETH-USD_1h_20180101-20191001_sma_cross``: what ran, on what, over which span."""
    first = min(b.time(0) for b in series)
    end = max(b.time(len(b) - 1) for b in series) + timedelta(seconds=series[0].timeframe_s)
    pairs = "+".join(b.pair.replace("/", "-") for b in series)
    return f"{pairs}_{timeframe}_{first:%Y%m%d}-{end:%Y%m%d}_{'+'.join(strategies)}"


def run(settings: Settings, series: tuple[Bars, ...], spec: RunSpec, directory: Path, quiet: bool,
        names: tuple[str, ...]) -> None:
    """Run the portfolio and print it; ``directory`` (``--out``) was checked by the caller, ``names`` are the
    strategies as file names may hold them."""
    from core.backtest.api import run_portfolio
    from core.backtest.report import write_all, write_equity_png, write_trades_csv
    from core.backtest.runner import pair_rules

    try:
        outcome = run_portfolio(settings, series, spec, settings.backtest.mode, progress=False if quiet else None)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    result, quote = outcome.result, series[0].pair.split("/")[1]
    typer.echo(f"portfolio {', '.join(b.pair for b in series)} {settings.trading.timeframe}, strategies: "
               f"{', '.join(names)}; sizing {spec.sizing}, fill on {spec.fill_on}; one cash balance in {quote}, "
               f"at most {settings.risk.max_open_positions} open positions")
    for bars in series:
        for line in bars.report.lines() if bars.report is not None else ():
            typer.echo(f"{bars.pair}: {line}")
        typer.echo(f"{bars.pair} market rules: {pair_rules(settings, bars).describe()}")
    candles = sum(len(b) for b in series)
    typer.echo(f"mode: {result.mode} ({outcome.mode_reason}); {candles} candles in {result.elapsed_s:.2f}s "
               f"({candles / result.elapsed_s if result.elapsed_s else 0:,.0f} candles/s)")
    for label, value in outcome.stats.rows(quote):
        typer.echo(f"  {label:>14}  {value}")
    typer.echo("per pair:")
    typer.echo(f"  {'pair':<12} {'trades':>6} {'open':>4} {'win rate':>8} {'pnl':>14} {'fees':>12} "
               f"{'exposure':>8} {'buy&hold':>9}")
    for pair_result, st in outcome.pairs:
        pnl = float(pair_result.table.pnl.sum())
        win = "n/a" if st.win_rate_pct is None else f"{st.win_rate_pct:.1f}%"
        typer.echo(f"  {pair_result.pair:<12} {st.trades:>6} {st.open_trades:>4} {win:>8} "
                   f"{money(pnl, quote):>14} {money(st.fees, quote):>12} {st.exposure_pct:>7.1f}% "
                   f"{st.buy_hold_pct:>+8.2f}%")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    for pause in result.pauses:
        resumed = f", resumed {pause.resumed_at:%Y-%m-%d %H:%M}" if pause.resumed_at else ", never resumed"
        typer.echo(f"  paused {pause.at:%Y-%m-%d %H:%M}: {pause.reason}{resumed}")
    name = stem(series, settings.trading.timeframe, names)
    trades_csv, equity_png = directory / f"{name}_trades.csv", directory / f"{name}_equity.png"
    title = f"{len(series)} pairs {settings.trading.timeframe} " + (
        "+".join(names) if len("+".join(names)) <= 24 else f"{len(names)} strategies")

    def write() -> None:
        write_trades_csv(trades_csv, result.trades)
        write_equity_png(equity_png, result, title, quote)

    try:
        write_all((trades_csv, equity_png), write)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        typer.echo(f"cannot write the results to {directory}: {exc.strerror or exc}{where}", err=True)
        raise typer.Exit(EXIT_FAIL) from None
    typer.echo(f"trades: {trades_csv}")
    typer.echo(f"equity chart: {equity_png}")
