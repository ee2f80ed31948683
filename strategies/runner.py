"""Running one strategy safely: failures become data, slow calls are counted.

A strategy that raises, or returns something that is not a sound :class:`Signal`, yields an error
result holding a HOLD signal; the exception never reaches the caller, so one broken strategy cannot
stop a scan (and an external module cannot take the engine down). ``KeyboardInterrupt`` and
``SystemExit`` are not caught: they are requests to stop the process, not strategy failures.

The time budget is checked, not enforced. Strategies are synchronous CPU-bound Python, and a
running Python function cannot be pre-empted from inside the same thread; the runner measures each
call and flags (and counts) those that exceeded the budget. Protection against a scan that never
returns lies one level up: the engine runs scans in a worker thread, off its control loop, with its
own timeout, so commands, stops and the kill switch keep working while a scan is stuck.

Counters are kept per strategy name and are safe to update from several worker threads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from strategies.base import Candles, Direction, Signal

log = logging.getLogger("tradectl.strategies")
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one call. ``signal`` is always usable: HOLD when the call failed."""

    strategy: str
    signal: Signal
    elapsed_s: float
    error: str | None = None
    over_budget: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """Counters for one strategy since the runner was created.

    ``timeouts`` counts calls that finished but took longer than the budget.
    """

    calls: int = 0
    errors: int = 0
    timeouts: int = 0
    last_error: str | None = None
    total_s: float = 0.0
    max_s: float = 0.0


class StrategyRunner:
    """Calls strategies with containment, timing and per-strategy counters."""

    def __init__(self, budget_s: float = 0.05, *, clock: Callable[[], float] = time.perf_counter) -> None:
        if not (math.isfinite(budget_s) and budget_s > 0):
            raise ValueError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
        self.budget_s = budget_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, _Counter] = {}

    def run(self, name: str, evaluate: Callable[[Candles], Signal], candles: Candles) -> RunResult:
        """Evaluate ``candles`` with one strategy; never raises for anything the strategy does."""
        started = self._clock()
        error: str | None = None
        signal: Signal | None = None
        try:
            produced = evaluate(candles)
            problem = _check_signal(produced, candles.pair)
            if problem is None:
                signal = produced
            else:
                error = f"returned an unusable signal: {problem}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("strategy %s failed on %s", name, candles.pair, exc_info=True)
        elapsed = self._clock() - started
        over = elapsed > self.budget_s
        if error is not None or signal is None:
            error = (error or "no signal")[:MAX_ERROR_CHARS]
            signal = Signal.hold(candles.pair, name, f"strategy error: {error}")
        if over:
            log.warning("strategy %s took %.1f ms on %s (budget %.1f ms)", name, elapsed * 1e3,
                        candles.pair, self.budget_s * 1e3)
        self._count(name, elapsed, error, over)
        return RunResult(strategy=name, signal=signal, elapsed_s=elapsed, error=error, over_budget=over)

    def stats(self) -> Mapping[str, StrategyStats]:
        """A snapshot of every strategy's counters."""
        with self._lock:
            return MappingProxyType({name: c.snapshot() for name, c in self._counters.items()})

    def _count(self, name: str, elapsed: float, error: str | None, over: bool) -> None:
        with self._lock:
            counter = self._counters.get(name)
            if counter is None:
                counter = self._counters[name] = _Counter()
            counter.add(elapsed, error, over)


class _Counter:
    """Mutable running totals behind :class:`StrategyStats` (updated on every call, so kept cheap)."""

    __slots__ = ("calls", "errors", "last_error", "max_s", "timeouts", "total_s")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.timeouts = 0
        self.last_error: str | None = None
        self.total_s = 0.0
        self.max_s = 0.0

    def add(self, elapsed: float, error: str | None, over: bool) -> None:
        self.calls += 1
        self.total_s += elapsed
        if elapsed > self.max_s:
            self.max_s = elapsed
        if over:
            self.timeouts += 1
        if error is not None:
            self.errors += 1
            self.last_error = error

    def snapshot(self) -> StrategyStats:
        return StrategyStats(self.calls, self.errors, self.timeouts, self.last_error, self.total_s, self.max_s)


def _check_signal(value: object, pair: str) -> str | None:
    """Why ``value`` is not a usable signal for ``pair``, or ``None`` when it is."""
    if not isinstance(value, Signal):
        return f"expected a Signal, got {type(value).__name__}"
    if not isinstance(value.direction, Direction):
        return f"direction {value.direction!r} is not a Direction"
    strength = value.strength
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        return f"strength {strength!r} is not in [0, 1]"
    if value.pair != pair:
        return f"signal is for {value.pair!r}, candles are for {pair!r}"
    for label, level in (("stop", value.stop), ("take_profit", value.take_profit)):
        if level is not None and (not isinstance(level, Decimal) or not level.is_finite() or level <= 0):
            return f"{label} {level!r} is not a positive Decimal"
    return None
