"""A one-line progress bar on stderr, without a dependency.

It draws only on a terminal (a redirected stderr gets nothing, so logs and CI output stay clean)
and at most ten times a second, so drawing never shows in a backtest's speed.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``update(done)`` as work advances, ``close()`` at the end; a no-op when disabled."""

    def __init__(self, total: int, label: str = "backtest", *, enabled: bool | None = None,
                 stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(total, 1)
        self.label = label
        self.width = width
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
        filled = int(frac * self.width)
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {frac:6.1%} {done}/{self.total} bars, "
                          f"{rate:,.0f} bars/s, eta {eta:4.0f}s ")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()
