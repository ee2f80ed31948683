"""What a backtest leaves on disk: the trades as CSV and the equity curve as PNG.

The chart is :func:`core.ops.charts.render_equity_png`, the same picture the bot's ``/chart`` sends, so
a backtest and a live account look alike. A long run is thinned to a few thousand points first
(keeping the drawdown's peak and trough, so the shaded fall is the true one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

from core.backtest.markets import quote_decimals
from core.backtest.model import BacktestResult, Trade
from core.backtest.stats import drawdown
from persistence.files import atomic_write

CSV_COLUMNS = ("pair", "entry_time", "exit_time", "qty", "entry_price", "exit_price", "fees", "pnl", "pnl_pct",
               "exit_reason")
MAX_POINTS = 4000


def _plain(value: Decimal) -> str:
    """``Decimal`` as plain text: no exponent, no trailing zeros beyond the value's own digits."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _iso(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else ""


def trade_rows(trades: Iterable[Trade]) -> Iterable[list[str]]:
    for t in trades:
        yield [t.pair, _iso(t.entry_time), _iso(t.exit_time), _plain(t.qty), _plain(t.entry_price),
               _plain(t.exit_price), _plain(t.fees), _plain(t.pnl), _plain(t.pnl_pct), t.exit_reason]


def write_trades_csv(path: Path, trades: Iterable[Trade]) -> None:
    """One row per trade; a position still open at the end has no exit time and reason ``open``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(trade_rows(trades))
    atomic_write(path, buf.getvalue().encode("utf-8"))


def equity_points(result: BacktestResult, limit: int = MAX_POINTS, quote: str = "") -> list[tuple[datetime, Decimal]]:
    """The equity curve thinned to about ``limit`` points, always keeping the drawdown's ends.

    Values keep the quote currency's decimals (8 for BTC), so that a curve moving by fractions of a
    cent of BTC is not drawn flat. A run without trades has a flat curve, drawn as one.
    """
    n = result.equity.size
    if n == 0:
        return []
    ends = np.asarray([i for i in drawdown(result.equity)[2:] if i is not None], dtype=np.int64)
    keep = np.unique(np.r_[np.linspace(0, n - 1, min(n, limit)).astype(np.int64), ends])
    places = quote_decimals(quote)
    return [(datetime.fromtimestamp(int(result.equity_ts[i]), UTC),
             Decimal(repr(round(float(result.equity[i]), places))))
            for i in keep]


def equity_png(result: BacktestResult, title: str, quote: str = "") -> bytes:
    from core.ops.charts import render_equity_png

    return render_equity_png(equity_points(result, quote=quote), title, quote=quote)


def write_equity_png(path: Path, result: BacktestResult, title: str, quote: str = "") -> None:
    atomic_write(path, equity_png(result, title, quote))


def write_all(paths: tuple[Path, ...], write: Callable[[], None]) -> None:
    """Run ``write``, which writes ``paths``; when it fails (``OSError``, raised again), the files it had
    created already are removed, so a failed run leaves no trades CSV without its chart."""
    existed = {p for p in paths if p.exists()}
    try:
        write()
    except OSError:
        for p in paths:
            if p not in existed:
                p.unlink(missing_ok=True)
        raise
