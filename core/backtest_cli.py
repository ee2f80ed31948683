"""``tradectl backtest`` and ``tradectl tune``: parse options, call :mod:`core.backtest`, print.

Mounted on the main app by :func:`register` (``register(app)`` in :mod:`core.cli`). Exit codes as
everywhere: 0 ok, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from core.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (default: ./tradectl.toml if present).", dir_okay=False)]
PairOpt = Annotated[str | None, typer.Option("--pair", help="Pair, BASE/QUOTE (default: the first of trading.pairs).")]
TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", help="Candle timeframe, e.g. 1h (default: trading.timeframe).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First candle's open time, UTC (YYYY-MM-DD or ISO 8601).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End, exclusive, UTC (YYYY-MM-DD or ISO 8601).")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Candles CSV (timestamp,open,high,low,close,volume); default: replay.csv, else the bundled BTC/USD 1h file.", dir_okay=False)]
StrategyOpt = Annotated[list[str] | None, typer.Option("--strategy", help="Run only this strategy (repeat for several); default: strategies.enabled.")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help="Strategy parameter, STRATEGY.PARAM=VALUE (repeatable).")]
SizingOpt = Annotated[str | None, typer.Option("--sizing", help="risk | fixed | fraction (default: backtest.sizing).")]
QtyOpt = Annotated[str | None, typer.Option("--qty", help="Units per entry with --sizing fixed.")]
FractionOpt = Annotated[str | None, typer.Option("--fraction", help="Share of equity per entry with --sizing fraction.")]
FillOpt = Annotated[str | None, typer.Option("--fill-on", help="next_open | last_close (default: backtest.fill_on).")]
FeeOpt = Annotated[str | None, typer.Option("--fee", help="Fee rate for both taker and maker, e.g. 0.001 (default: paper fees).")]
SlipOpt = Annotated[str | None, typer.Option("--slippage-bps", help="Slippage on market orders in basis points (default: paper.slippage_bps).")]
ImpactOpt = Annotated[str | None, typer.Option("--impact-bps", help="Extra slippage per 100% of candle volume taken (default: paper.impact_bps).")]
ShareOpt = Annotated[str | None, typer.Option("--volume-share", help="Largest share of a candle's volume one order fills; the rest fills in later candles.")]
CashOpt = Annotated[str | None, typer.Option("--cash", help="Starting cash in the quote currency (default: paper.starting_balances).")]
ModeOpt = Annotated[str | None, typer.Option("--mode", help="auto | engine | fast (default: backtest.mode).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"{name}: {text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dec(text: str | None, name: str) -> str | None:
    if text is None:
        return None
    try:
        Decimal(text)
    except InvalidOperation:
        raise _fail(f"{name}: {text!r} is not a number") from None
    return text


def _overrides(*, pair: str | None, timeframe: str | None, strategy: list[str] | None, param: list[str] | None,
               sizing: str | None, qty: str | None, fraction: str | None, fill_on: str | None, fee: str | None,
               slippage_bps: str | None, impact_bps: str | None, volume_share: str | None,
               mode: str | None) -> dict[str, Any]:
    from core.backtest.tune import parse_value

    out: dict[str, dict[str, Any]] = {"trading": {}, "strategies": {}, "paper": {}, "backtest": {}}
    if pair:
        out["trading"]["pairs"] = [pair]
    if timeframe:
        out["trading"]["timeframe"] = timeframe
    if strategy:
        out["strategies"]["enabled"] = list(strategy)
    params: dict[str, dict[str, Any]] = {}
    for item in param or ():
        key, sep, value = item.partition("=")
        name, dot, field = key.partition(".")
        if not (sep and dot and name and field):
            raise _fail(f"--param {item!r}: write STRATEGY.PARAM=VALUE, e.g. sma_cross.fast=10")
        params.setdefault(name, {})[field] = parse_value(value)
    if params:
        out["strategies"]["params"] = params
    for name, option in (("sizing", sizing), ("qty", _dec(qty, "--qty")), ("fraction", _dec(fraction, "--fraction")),
                         ("fill_on", fill_on), ("mode", mode)):
        if option is not None:
            out["backtest"][name] = option
    if fee is not None:
        out["paper"]["taker_fee"] = out["paper"]["maker_fee"] = _dec(fee, "--fee")
    for name, option in (("slippage_bps", _dec(slippage_bps, "--slippage-bps")),
                         ("impact_bps", _dec(impact_bps, "--impact-bps")),
                         ("volume_share", _dec(volume_share, "--volume-share"))):
        if option is not None:
            out["paper"][name] = option
    return {k: v for k, v in out.items() if v}


def _load(config: Path | None, overrides: dict[str, Any], cash: str | None) -> Settings:
    """The settings with the command's options on top; ``--cash`` is in the traded pair's quote."""
    try:
        settings = load_settings(config, overrides=overrides)
        if cash is not None:
            quote = settings.trading.pairs[0].split("/")[1]
            paper = {**overrides.get("paper", {}), "starting_balances": {quote: _dec(cash, "--cash")}}
            settings = load_settings(config, overrides={**overrides, "paper": paper})
        return settings
    except ConfigError as exc:
        raise _fail(f"configuration error: {exc}") from None


def _quiet_logs() -> None:
    from core.logs import setup_logging

    setup_logging(level="WARNING", fmt="text")


def _bars(settings: Settings, csv: Path | None, start: datetime | None, end: datetime | None) -> Any:
    from core.backtest.api import prepare_bars

    try:
        return prepare_bars(settings, settings.trading.pairs[0], settings.trading.timeframe_s,
                            csv=csv or settings.replay.csv, start=start, end=end)
    except Exception as exc:  # noqa: BLE001 - a bad file or range is the user's to fix; say what it is
        raise _fail(f"candles: {exc}") from None


def backtest(config: ConfigOpt = None, pair: PairOpt = None, timeframe: TimeframeOpt = None, start: FromOpt = None,
             end: ToOpt = None, csv: CsvOpt = None, strategy: StrategyOpt = None, param: ParamOpt = None,
             mode: ModeOpt = None, sizing: SizingOpt = None, qty: QtyOpt = None, fraction: FractionOpt = None,
             fill_on: FillOpt = None, fee: FeeOpt = None, slippage_bps: SlipOpt = None, impact_bps: ImpactOpt = None,
             volume_share: ShareOpt = None, cash: CashOpt = None,
             out: Annotated[Path | None, typer.Option("--out", help="Directory for the trades CSV and the equity PNG (default: backtest.output_dir).", file_okay=False)] = None,
             quiet: QuietOpt = False) -> None:
    """Backtest the configured strategies on historical candles with the engine's own code path.

    Signals are taken on a candle's close and filled at the next candle's open (see docs/backtesting.md);
    prints the statistics and writes a trades CSV and an equity-curve PNG.
    """
    _quiet_logs()
    overrides = _overrides(pair=pair, timeframe=timeframe, strategy=strategy, param=param, sizing=sizing, qty=qty,
                           fraction=fraction, fill_on=fill_on, fee=fee, slippage_bps=slippage_bps,
                           impact_bps=impact_bps, volume_share=volume_share, mode=mode)
    settings = _load(config, overrides, cash)
    from core.backtest.api import chart_title, output_stem, run_backtest, write_outputs
    from core.backtest.model import RunSpec

    bars = _bars(settings, csv, _when(start, "--from"), _when(end, "--to"))
    spec = RunSpec.from_settings(settings.backtest)
    try:
        outcome = run_backtest(settings, bars, spec, settings.backtest.mode, progress=False if quiet else None)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    result, quote_ccy = outcome.result, bars.pair.split("/")[1]
    typer.echo(f"{bars.pair} {settings.trading.timeframe}, strategies: {', '.join(settings.strategies.enabled)}; "
               f"sizing {spec.sizing}, fill on {spec.fill_on}")
    typer.echo(f"mode: {result.mode} ({outcome.mode_reason}); {result.bars} candles in {result.elapsed_s:.2f}s "
               f"({result.bars_per_s:,.0f} candles/s)")
    for label, value in outcome.stats.rows(quote_ccy):
        typer.echo(f"  {label:>14}  {value}")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    for pause in result.pauses:
        resumed = f", resumed {pause.resumed_at:%Y-%m-%d %H:%M}" if pause.resumed_at else ", never resumed"
        typer.echo(f"  paused {pause.at:%Y-%m-%d %H:%M}: {pause.reason}{resumed}")
    names = settings.strategies.enabled
    written = write_outputs(outcome, out or settings.backtest.output_dir, output_stem(bars, names),
                            chart_title(bars, names), quote_ccy)
    typer.echo(f"trades: {written.trades_csv}")
    typer.echo(f"equity chart: {written.equity_png}")


def tune(grid: Annotated[list[str], typer.Option("--grid", help="STRATEGY.PARAM=V1,V2,... (repeat for each parameter).")],
         config: ConfigOpt = None, pair: PairOpt = None, timeframe: TimeframeOpt = None, start: FromOpt = None,
         end: ToOpt = None, csv: CsvOpt = None, sizing: SizingOpt = None, qty: QtyOpt = None,
         fraction: FractionOpt = None, fill_on: FillOpt = None, fee: FeeOpt = None, slippage_bps: SlipOpt = None,
         impact_bps: ImpactOpt = None, volume_share: ShareOpt = None, cash: CashOpt = None,
         metric: Annotated[str | None, typer.Option("--metric", help="sharpe | return | profit_factor | expectancy | win_rate | max_drawdown | trades.")] = None,
         samples: Annotated[int | None, typer.Option("--samples", min=1, help="Try this many combinations, drawn at random (seeded) from the grid.")] = None,
         seed: Annotated[int | None, typer.Option("--seed", min=0, help="Seed for --samples (default: backtest.seed).")] = None,
         min_trades: Annotated[int | None, typer.Option("--min-trades", min=1, help="Rank sets with fewer closed trades last.")] = None,
         output: Annotated[Path | None, typer.Option("--output", help="Overlay file for the best set (default: backtest.overlay).", dir_okay=False)] = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Rank only; write nothing.")] = False,
         top: Annotated[int, typer.Option("--top", min=1, help="Rows of the ranking to print.")] = 10,
         quiet: QuietOpt = False) -> None:
    """Sweep a parameter grid, rank the results and write the best set to the tuned overlay.

    The overlay (default data/tuned.toml) is merged over your config at start-up; your own config
    file is never written.
    """
    _quiet_logs()
    overrides = _overrides(pair=pair, timeframe=timeframe, strategy=None, param=None, sizing=sizing, qty=qty,
                           fraction=fraction, fill_on=fill_on, fee=fee, slippage_bps=slippage_bps,
                           impact_bps=impact_bps, volume_share=volume_share, mode=None)
    settings = _load(config, overrides, cash)
    from core.backtest import tune as tuning
    from core.backtest.api import run_mode
    from core.backtest.fast import unsupported_reason
    from core.backtest.model import RunSpec
    from core.backtest.overlay import write_overlay
    from core.backtest.progress import Progress

    try:
        parsed = tuning.parse_grid(grid)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    target = (output or settings.backtest.overlay).resolve()
    env_config = os.environ.get("TRADECTL_CONFIG")
    own = [p.resolve() for p in (config, DEFAULT_CONFIG, Path(env_config) if env_config else None) if p is not None]
    if target in own:
        raise _fail(f"refusing to write tuning results to your config file {target}; pick another --output")
    bars = _bars(settings, csv, _when(start, "--from"), _when(end, "--to"))
    spec = RunSpec.from_settings(settings.backtest)
    seed_value = settings.backtest.seed if seed is None else seed
    count = len(tuning.combinations(parsed, samples, seed_value))
    first = tuning.combinations(parsed)[0]
    try:
        slow = unsupported_reason(tuning.with_params(settings, parsed.strategy, first), spec)
    except ValueError:
        slow = None  # that combination is refused; the sweep reports it
    if slow is not None:
        typer.echo(f"note: fast mode cannot run this sweep ({slow}); each of the {count} sets runs in the engine, "
                   f"about {len(bars) / 100 / 60:.0f} min each. --sizing fixed or fraction sweeps in seconds.", err=True)
    bar = Progress(count, "tune", enabled=False if quiet else None)

    def engine(s: Settings, b: Any, sp: RunSpec) -> Any:
        return run_mode(s, b, sp, "engine", progress=False)

    result = tuning.sweep(settings, bars, spec, parsed, metric=metric or settings.backtest.metric, samples=samples,
                         seed=seed_value, runner=tuning.default_runner(engine),
                         min_trades=min_trades or settings.backtest.min_trades, on_progress=lambda i, _n: bar.update(i))
    bar.close()
    _print_ranking(result, top)
    best = result.best
    if best is None or best.score == float("-inf"):
        raise _fail("no parameter set produced enough trades to rank; widen the grid or lower --min-trades", EXIT_FAIL)
    if dry_run:
        return
    header = [f"strategy {parsed.strategy}, ranked by {result.metric} = {best.score:.4g} over {result.tried} sets "
              f"(seed {seed_value})", f"data: {bars.pair} {settings.trading.timeframe}, {bars.time(0):%Y-%m-%d %H:%M} -> "
              f"{bars.time(len(bars) - 1) + timedelta(seconds=bars.timeframe_s):%Y-%m-%d %H:%M} UTC, {len(bars)} candles", "grid: " + " ".join(grid)]
    write_overlay(target, parsed.strategy, best.params, header)
    typer.echo(f"best {parsed.strategy}: {_fmt(best.params)} -> {target} (merged at start-up; your config file is untouched)")
    if parsed.strategy not in settings.strategies.enabled:
        typer.echo(f"note: {parsed.strategy} is not in strategies.enabled; the tuned values apply once it is")


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _print_ranking(result: Any, top: int) -> None:
    typer.echo(f"{result.tried} sets tried, {len(result.skipped)} skipped; ranked by {result.metric}")
    typer.echo(f"{'#':>3}  {'params':<28} {'score':>9} {'return%':>8} {'trades':>6} {'win%':>6} {'PF':>6} {'maxDD%':>7} {'sharpe':>7}  mode")
    for i, row in enumerate(result.rows[:top], 1):
        s = row.stats
        opt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
        typer.echo(f"{i:>3}  {_fmt(row.params):<28} {row.score:>9.4g} {s.return_pct:>8.2f} {s.trades:>6} "
                   f"{opt(s.win_rate_pct, '.1f'):>6} {opt(s.profit_factor, '.2f'):>6} {s.max_drawdown_pct:>7.2f} "
                   f"{opt(s.sharpe, '.2f'):>7}  {row.mode}{'' if row.exact else ' (approx.)'}")
    for combo, why in result.skipped[:5]:
        typer.echo(f"  skipped {_fmt(combo)}: {why}")
    if any(not row.exact for row in result.rows[:top]):
        typer.echo("  (approx.): fast mode met what it does not reproduce exactly, most often a breaker the "
                   "engine would trip (risk.daily_loss_limit, risk.max_drawdown); see docs/backtesting.md")


def register(app: typer.Typer) -> None:
    """Add ``backtest`` and ``tune`` to the ``tradectl`` app."""
    app.command("backtest")(backtest)
    app.command("tune")(tune)
