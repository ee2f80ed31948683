"""Combining several strategies' signals into one decision.

Each strategy votes +strength for BUY, -strength for SELL and 0 for HOLD; the combined score is
the weighted mean of the votes. A strategy that produced no signal this time (it failed, see
:mod:`strategies.runner`) counts as HOLD but keeps its weight in the denominator, so a broken
strategy makes the set more cautious, never more eager.

Exits are never vetoed. Entries can be: with a :class:`HigherTimeframeTrend`, a BUY becomes HOLD
unless the higher timeframe's close is above its EMA, or if the higher timeframe cannot be judged.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

import numpy as np
import talib

from strategies.base import Candles, Direction, Signal
from strategies.builtins import BUILTIN_NAMES
from strategies.errors import StrategyConfigError
from strategies.params import check_period

NAME = "confluence"


@dataclass(frozen=True, slots=True)
class HigherTimeframeTrend:
    """Allows entries only while the higher timeframe's last close is above its EMA."""

    ema_period: int = 50

    def __post_init__(self) -> None:
        check_period(NAME, "higher_timeframe_ema", self.ema_period)

    def allows_entry(self, higher: Candles | None) -> tuple[bool, str]:
        """(allowed, why). Missing, short or non-finite higher-timeframe data does not allow entry."""
        if higher is None:
            return False, "no higher-timeframe candles"
        if len(higher) < self.ema_period:
            return False, f"higher timeframe warming up: {len(higher)} of {self.ema_period} candles"
        if not np.isfinite(higher.close).all():
            return False, "higher-timeframe closes contain NaN or infinite values"
        ema = float(talib.EMA(higher.close, timeperiod=self.ema_period)[-1])
        close = float(higher.close[-1])
        if close > ema:
            return True, f"higher timeframe close {close:.6g} above EMA {self.ema_period} {ema:.6g}"
        return False, f"higher timeframe close {close:.6g} not above EMA {self.ema_period} {ema:.6g}"


class Confluence:
    """Weighted vote of named strategies; validated once, at construction.

    ``known`` lists the strategy names a weight may refer to (the built-ins by default). Weights must
    be finite and non-negative and not all zero; thresholds must be in (0, 1]. Any violation raises
    :class:`StrategyConfigError` naming the key.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        known: Collection[str] = BUILTIN_NAMES,
        entry_threshold: float = 0.2,
        exit_threshold: float = 0.2,
        higher_timeframe: HigherTimeframeTrend | None = None,
    ) -> None:
        self.weights: Mapping[str, float] = MappingProxyType(_validated_weights(weights, known))
        self.entry_threshold = _validated_threshold("entry_threshold", entry_threshold)
        self.exit_threshold = _validated_threshold("exit_threshold", exit_threshold)
        self.higher_timeframe = higher_timeframe
        self._total = math.fsum(self.weights.values())

    def combine(
        self,
        pair: str,
        signals: Mapping[str, Signal],
        *,
        higher: Candles | None = None,
        last_close: float | None = None,
    ) -> Signal:
        """One signal from the members' signals about the same candle.

        ``last_close``, when given, drops suggested stops at or above it and take-profits at or below
        it, so a confused member cannot hand the risk layer an impossible level.
        """
        score = 0.0
        parts: list[str] = []
        for name, weight in self.weights.items():
            sig = signals.get(name)
            if sig is None:
                parts.append(f"{name} missing")
                continue
            vote = _vote(sig)
            score += weight * vote
            if vote != 0.0 and weight > 0:
                parts.append(f"{name} {sig.direction.value} {sig.strength:.2f}x{weight:g}")
        score /= self._total
        contributors = ", ".join(parts) if parts else "no strategy has a setup"

        if score >= self.entry_threshold:
            summary = f"score {score:+.2f} >= {self.entry_threshold:g}: {contributors}"
            if self.higher_timeframe is not None:
                allowed, why = self.higher_timeframe.allows_entry(higher)
                if not allowed:
                    return Signal.hold(pair, NAME, f"buy vetoed, {why}; {summary}")
                summary = f"{summary}; {why}"
            stop, take_profit = self._levels(signals, last_close)
            return Signal(
                pair=pair,
                direction=Direction.BUY,
                strength=min(1.0, score),
                reason=summary,
                strategy=NAME,
                stop=stop,
                take_profit=take_profit,
            )
        if score <= -self.exit_threshold:
            return Signal(
                pair=pair,
                direction=Direction.SELL,
                strength=min(1.0, -score),
                reason=f"score {score:+.2f} <= -{self.exit_threshold:g}: {contributors}",
                strategy=NAME,
            )
        return Signal.hold(pair, NAME, f"score {score:+.2f} within thresholds: {contributors}")

    def _levels(self, signals: Mapping[str, Signal], last_close: float | None) -> tuple[Decimal | None, Decimal | None]:
        """The tightest (highest) stop and the nearest (lowest) take-profit among weighted BUY votes.

        Both are the conservative choice: the position is given up as soon as any buyer's thesis
        fails, and profit is taken at the first target any of them saw.
        """
        close = Decimal(repr(last_close)) if last_close is not None and math.isfinite(last_close) else None
        stops: list[Decimal] = []
        targets: list[Decimal] = []
        for name, weight in self.weights.items():
            sig = signals.get(name)
            if sig is None or weight <= 0 or sig.direction != Direction.BUY:
                continue
            if sig.stop is not None and sig.stop > 0 and (close is None or sig.stop < close):
                stops.append(sig.stop)
            if sig.take_profit is not None and sig.take_profit > 0 and (close is None or sig.take_profit > close):
                targets.append(sig.take_profit)
        stop = max(stops) if stops else None
        above = [t for t in targets if stop is None or t > stop]
        return stop, (min(above) if above else None)


def _vote(sig: Signal) -> float:
    if sig.direction == Direction.BUY:
        return sig.strength
    if sig.direction == Direction.SELL:
        return -sig.strength
    return 0.0


def _validated_weights(weights: Mapping[str, float], known: Collection[str]) -> dict[str, float]:
    if not weights:
        raise StrategyConfigError("confluence needs at least one weighted strategy (weights is empty)")
    out: dict[str, float] = {}
    for name, raw in weights.items():
        if name not in known:
            raise StrategyConfigError(
                f"weights.{name}: unknown strategy {name!r} (known: {', '.join(sorted(known))})"
            )
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise StrategyConfigError(f"weights.{name} must be a number, got {raw!r}")
        value = float(raw)
        if not math.isfinite(value):
            raise StrategyConfigError(f"weights.{name} must be finite, got {raw!r}")
        if value < 0:
            raise StrategyConfigError(f"weights.{name} must not be negative, got {raw!r}")
        out[name] = value
    if not any(w > 0 for w in out.values()):
        raise StrategyConfigError(f"weights are all zero ({', '.join(out)}): at least one must be above 0")
    return out


def _validated_threshold(name: str, value: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 < value <= 1:
        raise StrategyConfigError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)
