"""The equity chart: a PNG that decodes, shows the curve, and costs nothing until it is drawn."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image

from core.ops.charts import DPI, HEIGHT_PX, LINE, TEXT_PT, WIDTH_PX, equity_figure, render_equity_png, value_decimals

ROOT = Path(__file__).resolve().parents[3]


def curve(n: int = 240) -> list[tuple[datetime, Decimal]]:
    """Ten days hourly: up, a sharp drawdown in the middle, recovery."""
    start = datetime(2024, 3, 25, tzinfo=UTC)
    out = []
    for i in range(n):
        value = Decimal(10000) + Decimal(i) * Decimal("4.5")
        if 100 <= i < 140:
            value -= Decimal(min(i - 100, 140 - i) * 25)
        out.append((start + timedelta(hours=i), value))
    return out


def colour_mask(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    """Pixels (rows = y, columns = x) whose colour is within ``tolerance`` of ``rgb``."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int32)
    return np.abs(pixels - np.array(rgb)).sum(axis=2) <= tolerance


def colour_columns(png: bytes, rgb: tuple[int, int, int]) -> set[int]:
    """x positions where a pixel close to ``rgb`` appears."""
    return {int(x) for x in np.flatnonzero(colour_mask(png, rgb).any(axis=0))}


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_png_decodes_and_draws_the_curve_across_the_plot(tmp_path: Path) -> None:
    png = render_equity_png(curve(), "Equity 2024-03-25 to 2024-04-03", tz=ZoneInfo("Europe/Berlin"), quote="USD")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
    cols = colour_columns(png, hex_rgb(LINE))
    # the line runs across most of the width (not a dot, not an empty frame)
    assert len(cols) > 0.6 * image.size[0] and max(cols) - min(cols) > 0.7 * image.size[0]
    (tmp_path / "equity.png").write_bytes(png)


def test_rising_curve_is_drawn_from_lower_left_to_upper_right() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    points = [(start + timedelta(days=i), Decimal(1000 + 10 * i)) for i in range(30)]
    mask = colour_mask(render_equity_png(points, "up"), hex_rgb(LINE))
    ys = {int(x): int(np.flatnonzero(mask[:, x]).min()) for x in np.flatnonzero(mask.any(axis=0))}
    left, right = min(ys), max(ys)
    assert ys[left] > ys[right] + 100  # image y grows downwards: the right end is much higher


def test_no_data_and_a_single_point_give_a_clear_image() -> None:
    empty = render_equity_png([], "Equity")
    one = render_equity_png([(datetime(2024, 1, 1, tzinfo=UTC), Decimal("10000"))], "Equity", quote="USD")
    for png in (empty, one):
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
        assert not colour_columns(png, hex_rgb(LINE))  # no curve pretending to be data
    assert empty != one


def test_importing_the_reporting_modules_does_not_load_matplotlib() -> None:
    code = ("import sys, core.ops.charts, core.ops.reports, core.ops.scheduler; "
            "print(any(m == 'matplotlib' or m.startswith('matplotlib.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_chart_is_laid_out_for_a_phone_bubble() -> None:
    """390 CSS px wide at 2x density, not landscape, and no text under 14 CSS px (28 image px)."""
    assert (WIDTH_PX, HEIGHT_PX) == (780, 880)
    fig = equity_figure(curve(), "Equity, last 10 days", tz=ZoneInfo("Europe/Berlin"), quote="USD")
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(lambda o: hasattr(o, "get_fontsize") and o.get_text())]
    assert sizes and min(sizes) * DPI / 72 / 2 >= 14
    assert TEXT_PT * DPI / 72 >= 28
    ax = fig.axes[0]
    # few enough ticks to be read at arm's length, and each label shorter than a quarter of the width
    assert len([t for t in ax.get_xticklabels() if t.get_text()]) <= 5
    assert len([t for t in ax.get_yticklabels() if t.get_text()]) <= 7


def test_axis_labels_differ_for_a_small_priced_quote() -> None:
    """An account of 0.0123 BTC moving in the fifth decimal: every y tick label is a different number
    (they all read "0" before), and the headline shows the change in BTC, not 0.00."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    points = [(start + timedelta(hours=i), Decimal("0.0123") + Decimal(i) * Decimal("0.000002")) for i in range(60)]
    fig = equity_figure(points, "Equity", quote="BTC")
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    head = ax.get_title(loc="left")
    assert "0.01242" in head and "BTC" in head and "+0.00012" in head, head


def test_value_decimals_follow_the_spread() -> None:
    assert value_decimals(10_000, 10_500) == 2
    assert value_decimals(0.0123, 0.0124) == 5
    assert value_decimals(0.00001, 0.00002) == 6
    assert value_decimals(0.0000001, 0.0000002) == 8
    assert value_decimals(1000, 1000) == 2
