"""A configured set of strategies scanned together and combined into one signal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from strategies.base import Candles, Signal
from strategies.confluence import Confluence
from strategies.runner import RunResult, StrategyRunner, StrategyStats
from strategies.spec import BoundStrategy


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The combined signal and every member's own result, in configuration order."""

    signal: Signal
    results: tuple[RunResult, ...]


class StrategySet:
    """Members run one by one through a :class:`StrategyRunner`, then a :class:`Confluence` decides.

    Failed members count as HOLD in the vote (see :mod:`strategies.confluence`). Scanning is
    synchronous CPU work: callers on an event loop run it in a worker thread.
    """

    def __init__(
        self, members: Sequence[BoundStrategy], confluence: Confluence, runner: StrategyRunner | None = None
    ) -> None:
        names = [m.name for m in members]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"strategy names must be unique, repeated: {', '.join(duplicates)}")
        self.members: tuple[BoundStrategy, ...] = tuple(members)
        self.confluence = confluence
        self.runner = runner or StrategyRunner()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def member(self, name: str) -> BoundStrategy:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    def scan(self, candles: Candles, higher: Candles | None = None) -> ScanResult:
        results = tuple(self.runner.run(m.name, m.evaluate, candles) for m in self.members)
        signals = {r.strategy: r.signal for r in results if r.ok}
        last_close = float(candles.close[-1]) if len(candles) else None
        combined = self.confluence.combine(candles.pair, signals, higher=higher, last_close=last_close)
        return ScanResult(signal=combined, results=results)

    def evaluate(self, pair: str, candles: Candles, higher: Candles | None = None) -> Signal:
        """The combined signal only, in the ``(pair, window, higher_window)`` shape the engine calls.

        ``pair`` is accepted for that shape; the signal is about ``candles.pair``.
        """
        return self.scan(candles, higher).signal

    def stats(self) -> Mapping[str, StrategyStats]:
        return self.runner.stats()
