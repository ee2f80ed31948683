"""The equity-curve chart, rendered to PNG bytes without a display.

matplotlib is imported inside :func:`render_equity_png`, not at module level: importing it costs
a noticeable fraction of a second (more on the very first run, when it builds its font cache), and
start-up should not pay for a chart nobody may ask for. It draws on a bare ``Figure`` with the Agg
canvas rather than through ``pyplot``: no global figure registry, no backend switching, and safe to
call from a worker thread (reports render in one so the event loop is not blocked).

The image is the same wherever it goes: every chat adapter sends the bytes as an image block. It is
laid out for a phone, where it is mostly seen: a chat bubble is about 390 CSS pixels wide, so the
picture is 780 pixels wide (2x pixel density) and a little taller than wide, with text of at least
28 image pixels (14 CSS pixels) and few, well-spaced ticks. On a desktop it simply shows larger.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# 780 x 880 pixels: 390 x 440 CSS pixels at 2x, the width of a chat bubble on a phone.
WIDTH_PX, HEIGHT_PX, DPI = 780, 880, 160
WIDTH_IN, HEIGHT_IN = WIDTH_PX / DPI, HEIGHT_PX / DPI
# 13 pt at 160 dpi is 29 pixels: 14.4 CSS pixels on a 2x phone screen, the smallest text drawn.
TEXT_PT, HEAD_PT = 13.0, 16.0
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
    fig = equity_figure(points, title, tz=tz, quote=quote)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def equity_figure(
    points: Sequence[tuple[datetime, Decimal]],
    title: str,
    *,
    tz: tzinfo = UTC,
    quote: str = "",
) -> Figure:
    """The drawn figure behind :func:`render_equity_png` (laid out, not yet saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.tick_params(labelsize=TEXT_PT)
    if len(points) < 2:
        fig.suptitle(title, fontsize=TEXT_PT, x=0.04, ha="left", color="#57606a")
        _empty(ax, points, quote, tz)
    else:
        _curve(fig, ax, points, tz, quote, title)
    fig.tight_layout()
    return fig


def _empty(ax: Axes, points: Sequence[tuple[datetime, Decimal]], quote: str, tz: tzinfo) -> None:
    if points:
        t, v = points[0]
        value = _money(v, value_decimals(float(v), float(v)))
        note = (f"not enough data\nfor a curve yet\n\none snapshot:\n{value} {quote}\n"
                f"{t.astimezone(tz):%Y-%m-%d %H:%M %Z}")
    else:
        note = "no data yet\n\nequity snapshots\nappear once the\nengine has run"
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=HEAD_PT, color="#57606a",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _curve(fig: Figure, ax: Axes, points: Sequence[tuple[datetime, Decimal]], tz: tzinfo, quote: str,
           title: str) -> None:
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    # matplotlib's date numbers (what its date converter would make of the datetimes): its stubs accept
    # only numbers on an axis; the locator and formatter below show them in ``tz``. date2num is
    # unannotated in matplotlib 3.x, hence the ignore
    times = mdates.date2num([t.astimezone(tz) for t, _ in points])  # type: ignore[no-untyped-call]
    values = [float(v) for _, v in points]
    ax.plot(times, values, color=LINE, linewidth=2.4)
    low = min(values)
    ax.fill_between(times, values, low, color=LINE, alpha=0.08)

    start, end = _max_drawdown_span(values)
    if start is not None and end is not None:
        ax.axvspan(times[start], times[end], color=LOSS, alpha=0.08, lw=0)
        ax.plot([times[start], times[end]], [values[start], values[end]], "o", color=LOSS, ms=5)

    ax.plot([times[-1]], [values[-1]], "o", color=LINE, ms=6)
    first, last = points[0][1], points[-1][1]
    change = last - first
    pct = change / first * 100 if first else Decimal(0)
    places = value_decimals(min(values), max(values))
    # Headline first, as a phone reader looks for it: the value now and the change over the chart.
    fig.suptitle(title, fontsize=TEXT_PT, x=0.04, ha="left", color="#57606a")
    ax.set_title(f"{_money(last, places)} {quote}".strip() + f"\n{_signed(change, places)} ({pct:+.2f}%)",
                 loc="left", fontsize=HEAD_PT, color=LOSS if change < 0 else "#1a7f37")
    # date2num and these two constructors are unannotated in matplotlib 3.x, hence the ignores
    locator = mdates.AutoDateLocator(tz=tz, minticks=2, maxticks=4)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))  # type: ignore[no-untyped-call]
    ax.xaxis.get_offset_text().set_fontsize(TEXT_PT)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _axis_label(ax, v)))
    ax.grid(True, alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _max_drawdown_span(values: Sequence[float]) -> tuple[int | None, int | None]:
    """Indices of the peak and trough of the largest fall (None when the curve never falls)."""
    best = 0.0
    span: tuple[int | None, int | None] = (None, None)
    peak = 0
    for i, v in enumerate(values):
        if v > values[peak]:
            peak = i
        elif values[peak] - v > best:
            best, span = values[peak] - v, (peak, i)
    return span


def value_decimals(low: float, high: float) -> int:
    """Decimals that tell values in ``[low, high]`` apart: 2 for a USD account, up to 8 for a few
    hundredths of a BTC. A tenth of the spread must show (a thousandth of the value when flat),
    never fewer than 2, never more than 8 (the smallest unit of the common quote coins)."""
    spread = abs(high - low)
    scale = spread / 10 if spread > 0 else abs(high) / 1000
    if not math.isfinite(scale) or scale <= 0 or scale >= 0.01:
        return 2
    return min(8, -math.floor(math.log10(scale) + 1e-9))


def _axis_label(ax: Axes, value: float) -> str:
    """Tick labels with just enough decimals for neighbouring ticks to differ."""
    ticks = ax.yaxis.get_majorticklocs()
    step = min((abs(b - a) for a, b in itertools.pairwise(ticks) if b != a), default=0.0)
    places = max(0, min(8, -math.floor(math.log10(step) + 1e-9))) if 0 < step < 1 else 0
    return f"{value:,.{places}f}"


def _money(value: Decimal, places: int = 2) -> str:
    return f"{value:,.{places}f}"


def _signed(value: Decimal, places: int) -> str:
    return f"{value:+,.{places}f}"
