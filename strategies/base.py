"""Types shared by every strategy: a window of candles in, a typed signal out.

Strategies are pure functions of candles. They see float64 numpy arrays (indicators need floats);
prices they suggest (stop, take-profit) come back as ``Decimal`` so that money stays exact once it
leaves the strategy layer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Candles:
    """A contiguous, oldest-first window of closed candles for one pair and timeframe.

    ``ts`` holds each candle's open time in UTC epoch seconds.
    """

    pair: str
    timeframe_s: int
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.ts.shape[0])


class Direction(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Signal:
    """What one strategy (or the confluence of several) thinks about the latest closed candle.

    ``strength`` is in [0, 1]. ``stop`` and ``take_profit`` are absolute prices or ``None``.
    """

    pair: str
    direction: Direction
    strength: float
    reason: str
    strategy: str
    stop: Decimal | None = None
    take_profit: Decimal | None = None

    @classmethod
    def hold(cls, pair: str, strategy: str, reason: str = "no setup") -> Signal:
        return cls(pair=pair, direction=Direction.HOLD, strength=0.0, reason=reason, strategy=strategy)
