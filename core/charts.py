"""The equity-curve chart, rendered to PNG bytes without a display.

matplotlib is imported inside :func:`render_equity_png`, not at module level: importing it costs
a noticeable fraction of a second (more on the very first run, when it builds its font cache), and
start-up should not pay for a chart nobody may ask for. It draws on a bare ``Figure`` with the Agg
canvas rather than through ``pyplot``: no global figure registry, no backend switching, and safe to
call from a worker thread (reports render in one so the event loop is not blocked).

The image is the same wherever it goes: every chat adapter sends the bytes as an image block.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 110
LINE = "#1f6feb"
LOSS = "#d1242f"


def render_equity_png(
    points: Sequence[tuple[datetime, Decimal]],
    title: str,
    *,
    tz: tzinfo = UTC,
    quote: str = "",
) -> bytes:
    """A line chart of equity over time; a clear "no data yet" image when there is nothing to draw.

    The largest peak-to-trough fall is shaded so a drawdown is visible at a glance. Decimals become
    floats here, for drawing only.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title, fontsize=11, loc="left")
    if len(points) < 2:
        _empty(ax, points, quote, tz)
    else:
        _curve(ax, points, tz, quote)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _empty(ax: Axes, points: Sequence[tuple[datetime, Decimal]], quote: str, tz: tzinfo) -> None:
    if points:
        t, v = points[0]
        note = f"not enough data for a curve yet\none snapshot: {_money(v)} {quote} at {t.astimezone(tz):%Y-%m-%d %H:%M %Z}"
    else:
        note = "no data yet\nequity snapshots appear once the engine has run"
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=13, color="#57606a",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _curve(ax: Axes, points: Sequence[tuple[datetime, Decimal]], tz: tzinfo, quote: str) -> None:
    import matplotlib.dates as mdates

    times = [t.astimezone(tz) for t, _ in points]
    values = [float(v) for _, v in points]
    ax.plot(times, values, color=LINE, linewidth=1.6)
    low = min(values)
    ax.fill_between(times, values, low, color=LINE, alpha=0.08)

    start, end = _max_drawdown_span(values)
    if start is not None and end is not None:
        ax.axvspan(times[start], times[end], color=LOSS, alpha=0.08, lw=0)
        ax.plot([times[start], times[end]], [values[start], values[end]], "o", color=LOSS, ms=3)

    ax.plot([times[-1]], [values[-1]], "o", color=LINE, ms=4)
    first, last = points[0][1], points[-1][1]
    change = last - first
    pct = change / first * 100 if first else Decimal(0)
    ax.set_title(f"{f'{_money(last)} {quote}'.strip()}   {change:+,.2f} ({pct:+.2f}%)",
                 loc="right", fontsize=10, color=LOSS if change < 0 else "#1a7f37")
    locator = mdates.AutoDateLocator(tz=tz)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.set_ylabel(f"equity ({quote})" if quote else "equity")
    ax.grid(True, alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _max_drawdown_span(values: Sequence[float]) -> tuple[int | None, int | None]:
    """Indices of the peak and trough of the largest fall (None when the curve never falls)."""
    best, span = 0.0, (None, None)
    peak = 0
    for i, v in enumerate(values):
        if v > values[peak]:
            peak = i
        elif values[peak] - v > best:
            best, span = values[peak] - v, (peak, i)
    return span


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"
