"""A one-line progress bar on stderr, without a dependency.

It draws only on a terminal (a redirected stderr gets nothing, so logs and CI output stay clean)
and at most ten times a second, so drawing never shows in a backtest's speed. The line fits the
terminal's width (a phone's SSH window is some 32 columns): a line that wrapped would be redrawn
below itself at every update instead of over itself. The bar shrinks first, then the details go.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class Progress:
    """``update(done)`` as work advances, ``close()`` at the end; a no-op when disabled."""

    def __init__(self, total: int, label: str = "backtest", *, enabled: bool | None = None,
                 stream: TextIO | None = None, width: int = 30, columns: int | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(total, 1)
        self.label = label
        self.width = width
        self.columns = columns  # None: the terminal's width, asked at each draw (it may be resized)
        self._started = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and done < self.total:
            return
        self._last_draw = now
        frac = min(done / self.total, 1.0)
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        self.stream.write("\r" + self._line(frac, done, rate, eta))
        self.stream.flush()
        self._drawn = True

    def _line(self, frac: float, done: int, rate: float, eta: float) -> str:
        """The longest form that fits in the terminal's width less one column (the cursor's)."""
        room = (self.columns or shutil.get_terminal_size().columns) - 1
        full = f" {frac:6.1%} {done}/{self.total} bars, {rate:,.0f} bars/s, eta {eta:4.0f}s "
        short = f" {frac:4.0%} eta {eta:.0f}s "
        for tail in (full, short):
            bar_room = min(self.width, room - len(self.label) - len(tail) - 3)
            if bar_room >= 5:
                filled = int(frac * bar_room)
                return f"{self.label} [{'#' * filled}{'-' * (bar_room - filled)}]{tail}"
        return f"{self.label}{short}"[:max(room, 1)]

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()
