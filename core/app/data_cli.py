"""``tradectl data download`` and ``tradectl data list``: candle history for backtests and tuning.

Parses options and prints; the fetching, paging, merging and gap counting are in
:mod:`core.backtest.download`. Exit codes: 0 ok, 1 the venue failed, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from core.settings.config import ConfigError, Settings, load_settings

EXIT_FAIL, EXIT_USAGE = 1, 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

data_app = typer.Typer(help="Candle history for backtests: download from Kraken or Coinbase, list what is stored.",
                       no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", dir_okay=False, help=(
    "TOML settings file (default: ./tradectl.toml if present)."))]


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise _fail(f"configuration error: {exc}") from None


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except ValueError:
        raise _fail(f"{name}: {text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    except OverflowError:  # an offset that moves the time past year 1 or 9999
        raise _fail(f"{name}: {text!r} is out of range") from None
    if value < EPOCH:  # no venue has candles before; the venues count time in seconds since it
        raise _fail(f"{name}: {text!r} is before 1970")
    return value


def _span(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "empty"
    return f"{first:%Y-%m-%d %H:%M} -> {last:%Y-%m-%d %H:%M} UTC"


@data_app.command("download")
def download(venue: Annotated[str, typer.Option("--venue", help="kraken | coinbase")],
             pair: Annotated[str, typer.Option("--pair", help="Pair, BASE/QUOTE, e.g. BTC/USD.")],
             timeframe: Annotated[str, typer.Option("--timeframe", help="1m 5m 15m 30m 1h 4h 1d")] = "1h",
             since: Annotated[str | None, typer.Option("--since", help=(
                 "First candle wanted, UTC (default: continue after the stored file, else one year back); the "
                 "stored file's gaps from it on are asked for again, at most twice each."))] = None,
             until: Annotated[str | None, typer.Option("--until", help=(
                 "End, exclusive, UTC (default: the last closed candle)."))] = None,
             config: ConfigOpt = None,
             quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False) -> None:
    """Download candles from the venue's public REST endpoint (no API key) into the data directory.

    Resumable: a second run continues after the last stored candle; with --since, the stored file's
    gaps in the range are asked for again (each at most twice). Kraken serves only its most
    recent 720 candles per timeframe; Coinbase serves any range (see docs/backtesting.md).
    """
    from core.backtest.download import VENUES, Downloaded, make_source, timeframe_seconds
    from core.backtest.download import download as fetch
    from core.runtime.logs import setup_logging

    setup_logging(level="WARNING", fmt="text")  # retries are worth seeing; the rest is noise here
    settings = _settings(config)
    if venue not in VENUES:
        raise _fail(f"--venue {venue!r}: use {' or '.join(VENUES)}")
    try:
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    start, end = _when(since, "--since"), _when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise _fail("--since must be before --until")
    rest_url = (settings.kraken if venue == "kraken" else settings.coinbase).rest_url
    source = make_source(venue, rest_url)

    def progress(count: int, newest: datetime) -> None:
        if not quiet:
            typer.echo(f"  {count} candles fetched, up to {newest:%Y-%m-%d %H:%M} UTC", err=True)

    async def run() -> Downloaded:
        try:
            return await fetch(source, settings.service.data_dir, pair, timeframe, since=start, until=end,
                               progress=progress)
        finally:
            await source.close()

    try:
        result = asyncio.run(run())
    except ValueError as exc:  # a bad pair spelling, or a stored file that no longer reads (DataError)
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; the candles fetched so far are stored: run the same command again to continue",
                    130) from None
    except Exception as exc:  # noqa: BLE001 - the venue's refusal or an outage: say it, no traceback
        raise _fail(f"{venue}: {exc}", EXIT_FAIL) from None
    stored = result.stored
    typer.echo(f"{venue} {stored.pair} {timeframe}: {result.added} new candles -> {stored.path}")
    typer.echo(f"stored: {stored.rows} candles, {_span(stored.first, stored.last)}")
    typer.echo(f"gaps: {stored.gaps.describe(timeframe_seconds(timeframe))}")
    for line in result.refill.lines() if result.refill is not None else ():
        typer.echo(line)
    for note in result.notes:
        typer.echo(f"note: {note}")


@data_app.command("list")
def list_(config: ConfigOpt = None) -> None:
    """What candle history is stored: venue, pair, timeframe, first and last candle, rows and gaps."""
    from core.backtest.download import describe_file, stored_files

    settings = _settings(config)
    files = stored_files(settings.service.data_dir)
    if not files:
        typer.echo(f"no candles stored under {settings.service.data_dir / 'candles'}; "
                   "get some with `tradectl data download`")
        return
    typer.echo(f"{'venue':<9} {'pair':<10} {'tf':<4} {'first':<17} {'last':<17} {'rows':>7} {'gaps':>5} "
               f"{'missing':>7}")
    for path in files:
        try:
            s = describe_file(path)
        except ValueError as exc:
            typer.echo(f"{path}: unreadable: {str(exc).splitlines()[0]}")
            continue
        first = f"{s.first:%Y-%m-%d %H:%M}" if s.first else "-"
        last = f"{s.last:%Y-%m-%d %H:%M}" if s.last else "-"
        typer.echo(f"{s.venue:<9} {s.pair:<10} {s.timeframe:<4} {first:<17} {last:<17} {s.rows:>7} "
                   f"{s.gaps.count:>5} {s.gaps.missing:>7}")
    typer.echo(f"(times are candle open times, UTC; files under {settings.service.data_dir / 'candles'})")
