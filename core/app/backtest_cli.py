"""``tradectl backtest``: parse options, call :mod:`core.backtest`, print (``tune`` reuses the options here).

Mounted on the main app by :func:`register` (``register(app)`` in :mod:`core.app.cli`). Exit codes as
everywhere: 0 ok, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from core.settings.config import ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# quantity steps the starting equity may buy at the lowest price: the accounting counts in Decimals of 28
# digits, and the fast path counts fills in 64-bit integers
MAX_STEPS = Decimal(10) ** 24

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help=(
    "TOML settings file (default: ./tradectl.toml if present)."), dir_okay=False)]
PairOpt = Annotated[str | None, typer.Option("--pair", help="Pair, BASE/QUOTE (default: the first of trading.pairs).")]
PairsOpt = Annotated[list[str] | None, typer.Option("--pair", help=(
    "Pair, BASE/QUOTE; repeat for a portfolio backtest in the engine sharing cash and risk limits "
    "(default: trading.pairs)."))]
CsvsOpt = Annotated[list[Path] | None, typer.Option("--csv", dir_okay=False, help=(
    "Candles CSV (timestamp,open,high,low,close,volume), one per --pair in the same order; default: replay.csv, "
    "else what `tradectl data download` stored for the pair and timeframe, else the bundled BTC/USD 1h file."))]
TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", help=(
    "Candle timeframe, e.g. 1h (default: trading.timeframe)."))]
FromOpt = Annotated[str | None, typer.Option("--from", help="First candle's open time, UTC (YYYY-MM-DD or ISO 8601).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End, exclusive, UTC (YYYY-MM-DD or ISO 8601).")]
WarmupOpt = Annotated[int, typer.Option("--warmup", min=0, help=(
    "Candles before --from (or at the start of the file) given to the strategies as history only, as a "
    "service running all along would have them: indicators see them, nothing is traded on them, and the "
    "statistics start after them (default 0: a cold start)."))]
CsvOpt = Annotated[Path | None, typer.Option("--csv", dir_okay=False, help=(
    "Candles CSV (timestamp,open,high,low,close,volume); default: replay.csv, else what `tradectl data download` "
    "stored for the pair and timeframe, else the bundled BTC/USD 1h file."))]
StrategyOpt = Annotated[list[str] | None, typer.Option("--strategy", help=(
    "Run only this strategy (repeat for several); default: strategies.enabled."))]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help=(
    "Strategy parameter, STRATEGY.PARAM=VALUE (repeatable)."))]
SizingOpt = Annotated[str | None, typer.Option("--sizing", help="risk | fixed | fraction (default: backtest.sizing).")]
QtyOpt = Annotated[str | None, typer.Option("--qty", help="Units per entry with --sizing fixed.")]
FractionOpt = Annotated[str | None, typer.Option("--fraction", help=(
    "Share of equity per entry with --sizing fraction."))]
FillOpt = Annotated[str | None, typer.Option("--fill-on", help="next_open | last_close (default: backtest.fill_on).")]
FeeOpt = Annotated[str | None, typer.Option("--fee", help=(
    "Fee rate for both taker and maker, e.g. 0.001 (default: paper fees)."))]
SlipOpt = Annotated[str | None, typer.Option("--slippage-bps", help=(
    "Slippage on market orders in basis points (default: paper.slippage_bps)."))]
ImpactOpt = Annotated[str | None, typer.Option("--impact-bps", help=(
    "Extra slippage per 100% of candle volume taken (default: paper.impact_bps)."))]
ShareOpt = Annotated[str | None, typer.Option("--volume-share", help=(
    "Largest share of a candle's volume one order fills; the rest fills in later candles."))]
CashOpt = Annotated[str | None, typer.Option("--cash", help=(
    "Starting cash in the quote currency (default: paper.starting_balances)."))]
ModeOpt = Annotated[str | None, typer.Option("--mode", help="auto | engine | fast (default: backtest.mode).")]
LenientOpt = Annotated[bool, typer.Option("--lenient", help=(
    "Drop bad candle rows (counted per problem) instead of refusing the file."))]
TickOpt = Annotated[str | None, typer.Option("--tick", help=(
    "Price tick (default: the pair's recorded market data, else the candles' price decimals)."))]
StepOpt = Annotated[str | None, typer.Option("--step", help="Quantity step (default: as for --tick).")]
MinQtyOpt = Annotated[str | None, typer.Option("--min-qty", help="Minimum order quantity (default: as for --tick).")]
MinNotionalOpt = Annotated[str | None, typer.Option("--min-notional", help=(
    "Minimum order value in the quote currency (default: the recorded market data, else paper.min_notional "
    "for a fiat or stablecoin quote and none otherwise)."))]
# the backtest's market-rule flags, overrides of the paper settings (see core.backtest.markets)
RULE_FLAGS = (("price_tick", "--tick"), ("qty_step", "--step"), ("min_qty", "--min-qty"),
              ("min_notional", "--min-notional"))
FullScanOpt = Annotated[bool, typer.Option("--full-scan", help=(
    "Engine mode: run the strategies on every candle, also where their vectorized signals say all would hold "
    "(slower; the same trades, which this lets you check)."))]
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


def _overrides(*, pair: str | list[str] | None, timeframe: str | None, strategy: list[str] | None,
               param: list[str] | None, sizing: str | None, qty: str | None, fraction: str | None,
               fill_on: str | None, fee: str | None,
               slippage_bps: str | None, impact_bps: str | None, volume_share: str | None,
               mode: str | None, rules: dict[str, str | None] | None = None) -> dict[str, Any]:
    from core.backtest.tune import parse_value

    out: dict[str, dict[str, Any]] = {"trading": {}, "strategies": {}, "paper": {}, "backtest": {}}
    if pair:
        out["trading"]["pairs"] = [pair] if isinstance(pair, str) else list(pair)
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
                         ("volume_share", _dec(volume_share, "--volume-share")),
                         *((name, _dec((rules or {}).get(flag), flag)) for name, flag in RULE_FLAGS)):
        if option is not None:
            out["paper"][name] = option
    return {k: v for k, v in out.items() if v}


def _load(config: Path | None, overrides: dict[str, Any], cash: str | None) -> Settings:
    """The settings with the command's options on top; ``--cash`` is in the traded pair's quote."""
    try:
        settings = load_settings(config, overrides=overrides)
        if cash is not None:
            quote = settings.trading.pairs[0].split("/")[1]
            amount = Decimal(_dec(cash, "--cash") or "0")
            if not (amount.is_finite() and amount > 0):
                raise _fail(f"--cash {cash}: starting cash must be a number above 0")
            paper = {**overrides.get("paper", {}), "starting_balances": {quote: cash}}
            settings = load_settings(config, overrides={**overrides, "paper": paper})
        return settings
    except ConfigError as exc:
        raise _fail(f"configuration error: {exc}") from None


def _quiet_logs() -> None:
    from core.runtime.logs import setup_logging

    setup_logging(level="WARNING", fmt="text")


def _downloaded(settings: Settings, pair: str | None = None) -> Path | None:
    """The file ``tradectl data download`` stored for the pair and timeframe (the choice is printed); None if none."""
    from core.backtest.download import find_candles

    found = find_candles(settings.service.data_dir, pair or settings.trading.pairs[0], settings.trading.timeframe,
                         prefer=settings.trading.venue)
    if found is None:
        return None
    typer.echo(found.describe())
    return found.path


def _bars(settings: Settings, csv: Path | None, start: datetime | None, end: datetime | None,
          lenient: bool = False, pair: str | None = None) -> Any:
    from core.backtest.api import prepare_bars

    pair = pair or settings.trading.pairs[0]
    csv = csv or settings.replay.csv or _downloaded(settings, pair)
    try:
        return prepare_bars(settings, pair, settings.trading.timeframe_s,
                            csv=csv, start=start, end=end, lenient=lenient)
    except Exception as exc:  # noqa: BLE001 - a bad file or range is the user's to fix; say what it is
        raise _fail(f"candles: {exc}") from None


def _warm_bars(settings: Settings, csv: Path | None, start: datetime | None, end: datetime | None, lenient: bool,
               warmup: int) -> tuple[Any, int, str]:
    """The run's candles with up to ``warmup`` candles of history before ``start`` (the file's first
    ``warmup`` candles without ``--from``), how many of them there are, and a line saying so."""
    if not warmup:
        return _bars(settings, csv, start, end, lenient), 0, ""
    tf = settings.trading.timeframe_s
    try:
        early = None if start is None else start - timedelta(seconds=warmup * tf)
    except OverflowError:  # more candles than there is time before --from: all the file holds
        early = None
    bars = _bars(settings, csv, early, end, lenient)
    ts = bars.arrays.ts
    w = min(warmup, len(bars)) if start is None else int((ts < int(start.timestamp())).sum())
    if w >= len(bars):
        raise _fail(f"--warmup {warmup}: no candles left to trade after the warm-up ({len(bars)} candles in all)")
    first, traded = _utc(int(ts[0])), _utc(int(ts[w]))
    if w == 0:
        return bars, 0, f"warm-up: no candles before {traded:%Y-%m-%d %H:%M} UTC in the data; a cold start"
    short = f" (only {w} of the {warmup} asked for are in the data)" if w < warmup else ""
    note = (f"warm-up: {w} candles, {first:%Y-%m-%d %H:%M} -> {traded:%Y-%m-%d %H:%M} UTC, history only{short}; "
            "trades and statistics start after them")
    return bars, w, note


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def strategy_names(settings: Settings) -> tuple[str, ...]:
    """The strategies a run uses, built-in then external, as the output and its file names show them.

    An external strategy's name is free text: in a file name, anything but letters, digits, ``.``, ``_``
    and ``-`` becomes ``-`` (a ``/`` would write elsewhere than ``--out``).
    """
    names = (*settings.strategies.enabled, *(e.name for e in settings.strategies.external))
    return tuple(re.sub(r"[^A-Za-z0-9_.-]+", "-", n) for n in names)


def check_size(settings: Settings, series: tuple[Any, ...]) -> None:
    """Refuse starting equity so large that what it buys at the lowest price is past the digits counted."""
    from core.backtest.runner import pair_rules, start_equity

    equity = start_equity(settings, series)
    for bars in series:
        try:
            rules = pair_rules(settings, bars).rules
        except ValueError as exc:
            raise _fail(str(exc)) from None
        low = bars.price(int(bars.arrays.low.argmin()), "low")
        base, quote = bars.pair.split("/")
        if equity / low / rules.qty_step > MAX_STEPS:
            raise _fail(f"starting equity {equity:,f} {quote} buys {equity / low:.3e} {base} at the lowest price "
                        f"{format(low.normalize(), 'f')}, more than {MAX_STEPS:.0e} steps of "
                        f"{format(rules.qty_step.normalize(), 'f')}: past the digits the accounting counts in; "
                        "start with less --cash")


def out_dir(path: Path) -> Path:
    """``--out`` checked before the run: a directory, or one that can be made (nothing is created yet)."""
    if path.exists() and not path.is_dir():
        raise _fail(f"--out {path}: not a directory")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise _fail(f"--out {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _fail(f"--out {path}: {parent} is not writable")
    return path


def write_results(paths: tuple[Path, ...], write: Callable[[], None]) -> None:
    """Run ``write`` (:func:`core.backtest.report.write_all`); a failure is one line and exit code 1."""
    from core.backtest.report import write_all

    try:
        write_all(paths, write)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise _fail(f"cannot write the results to {paths[0].parent}: {exc.strerror or exc}{where}", EXIT_FAIL) from None


def backtest(config: ConfigOpt = None, pair: PairsOpt = None, timeframe: TimeframeOpt = None, start: FromOpt = None,
             end: ToOpt = None, csv: CsvsOpt = None, strategy: StrategyOpt = None, param: ParamOpt = None,
             mode: ModeOpt = None, sizing: SizingOpt = None, qty: QtyOpt = None, fraction: FractionOpt = None,
             fill_on: FillOpt = None, fee: FeeOpt = None, slippage_bps: SlipOpt = None, impact_bps: ImpactOpt = None,
             volume_share: ShareOpt = None, cash: CashOpt = None, lenient: LenientOpt = False,
             tick: TickOpt = None, step: StepOpt = None, min_qty: MinQtyOpt = None,
             min_notional: MinNotionalOpt = None,
             out: Annotated[Path | None, typer.Option("--out", file_okay=False, help=(
                 "Directory for the trades CSV and the equity PNG (default: backtest.output_dir)."))] = None,
             full_scan: FullScanOpt = False, warmup: WarmupOpt = 0, quiet: QuietOpt = False) -> None:
    """Backtest the configured strategies on historical candles with the engine's own code path.

    Signals are taken on a candle's close and filled at the next candle's open (see docs/backtesting.md);
    prints the statistics and writes a trades CSV and an equity-curve PNG. Several pairs (--pair repeated, or
    trading.pairs) run as one portfolio in the engine.
    """
    _quiet_logs()
    overrides = _overrides(pair=pair, timeframe=timeframe, strategy=strategy, param=param, sizing=sizing, qty=qty,
                           fraction=fraction, fill_on=fill_on, fee=fee, slippage_bps=slippage_bps,
                           impact_bps=impact_bps, volume_share=volume_share, mode=mode,
                           rules={"--tick": tick, "--step": step, "--min-qty": min_qty, "--min-notional": min_notional})
    settings = _load(config, overrides, cash)
    from core.backtest.api import chart_title, output_stem, run_backtest, write_outputs
    from core.backtest.model import RunSpec
    from core.backtest.runner import pair_rules

    directory = out_dir(out or settings.backtest.output_dir)
    first, end_at = _when(start, "--from"), _when(end, "--to")
    if first is not None and end_at is not None and first >= end_at:
        raise _fail(f"--from {start} is not before --to {end} (--to is exclusive)")
    pairs, files = settings.trading.pairs, list(csv or ())
    if len(files) > 1 and len(files) != len(pairs):
        raise _fail(f"--csv given {len(files)} times for {len(pairs)} pairs: give one per --pair, in the same order")
    if len(pairs) > 1 and len(files) == 1:
        raise _fail(f"one --csv for {len(pairs)} pairs: give one per --pair, in the same order")
    spec = dataclasses.replace(RunSpec.from_settings(settings.backtest), prescan=not full_scan)
    if len(pairs) > 1 and warmup:
        raise _fail("--warmup applies to a backtest of one pair, not a portfolio")
    if len(pairs) > 1:
        from core.app.portfolio_cli import run as run_portfolio

        series = tuple(_bars(settings, files[i] if files else None, _when(start, "--from"), _when(end, "--to"),
                             lenient, pair=p) for i, p in enumerate(pairs))
        check_size(settings, series)
        run_portfolio(settings, series, spec, directory, quiet, strategy_names(settings))
        return
    bars, warm, warm_note = _warm_bars(settings, files[0] if files else None, _when(start, "--from"),
                                       _when(end, "--to"), lenient, warmup)
    spec = dataclasses.replace(spec, warmup=warm)
    check_size(settings, (bars,))
    try:
        outcome = run_backtest(settings, bars, spec, settings.backtest.mode, progress=False if quiet else None)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    result, quote_ccy = outcome.result, bars.pair.split("/")[1]
    typer.echo(f"{bars.pair} {settings.trading.timeframe}, strategies: {', '.join(strategy_names(settings))}; "
               f"sizing {spec.sizing}, fill on {spec.fill_on}")
    for line in bars.report.lines() if bars.report is not None else ():
        typer.echo(line)
    if warm_note:
        typer.echo(warm_note)
    typer.echo(f"market rules: {pair_rules(settings, bars).describe()}")
    scanned = "; every candle scanned (--full-scan)" if full_scan and result.mode == "engine" else ""
    typer.echo(f"mode: {result.mode} ({outcome.mode_reason}){scanned}; {result.bars} candles in "
               f"{result.elapsed_s:.2f}s ({result.bars_per_s:,.0f} candles/s)")
    for label, value in outcome.stats.rows(quote_ccy):
        typer.echo(f"  {label:>14}  {value}")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    for pause in result.pauses:
        resumed = f", resumed {pause.resumed_at:%Y-%m-%d %H:%M}" if pause.resumed_at else ", never resumed"
        typer.echo(f"  paused {pause.at:%Y-%m-%d %H:%M}: {pause.reason}{resumed}")
    names = strategy_names(settings)
    stem = output_stem(bars, names)
    paths = (directory / f"{stem}_trades.csv", directory / f"{stem}_equity.png")

    def write() -> None:
        write_outputs(outcome, directory, stem, chart_title(bars, names), quote_ccy)

    write_results(paths, write)
    typer.echo(f"trades: {paths[0]}")
    typer.echo(f"equity chart: {paths[1]}")


def register(app: typer.Typer) -> None:
    """Add ``backtest`` to the ``tradectl`` app (``tune`` is :mod:`core.app.tune_cli`)."""
    app.command("backtest")(backtest)
