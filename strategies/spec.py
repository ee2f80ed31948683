"""Descriptions of strategies: a built-in's entry in the registry, and a strategy bound to its params.

A :class:`BoundStrategy` is what the rest of the system runs: a name and a function of candles.
Built-ins also carry their vectorized form for the backtest; external strategies do not have one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strategies.base import Candles, Signal
from strategies.common import DirectionArray
from strategies.params import params_from_dict


@dataclass(frozen=True, slots=True)
class BoundStrategy:
    """A strategy with its parameters fixed: ``evaluate(candles)`` judges the last candle.

    ``signals`` (built-ins only) gives +1/-1/0 for every bar of a window at once, equal at each
    bar ``i`` to what ``evaluate`` says about the window ``[0..i]``. ``origin`` is ``"builtin"`` or
    the path of the external module file.
    """

    name: str
    evaluate: Callable[[Candles], Signal]
    signals: Callable[[Candles], DirectionArray] | None
    warmup: int | None
    params: object
    origin: str = "builtin"


@dataclass(frozen=True, slots=True)
class BuiltinStrategy:
    """One built-in strategy: its parameter type and its two forms, each taking ``(candles, params)``."""

    name: str
    summary: str
    params_type: type[Any]
    evaluate: Callable[[Candles, Any], Signal]
    signals: Callable[[Candles, Any], DirectionArray]
    warmup: Callable[[Any], int]

    def default_params(self) -> Any:
        return self.params_type()

    def params(self, data: Mapping[str, object] | None = None) -> Any:
        """Typed parameters from a plain mapping; see :func:`strategies.params.params_from_dict`."""
        return params_from_dict(self.params_type, data, strategy=self.name)

    def bind(self, params: Any | None = None) -> BoundStrategy:
        if params is None:
            params = self.default_params()
        if not isinstance(params, self.params_type):
            raise TypeError(f"{self.name} takes {self.params_type.__name__}, got {type(params).__name__}")
        evaluate, signals = self.evaluate, self.signals

        def run(candles: Candles) -> Signal:
            return evaluate(candles, params)

        def vector(candles: Candles) -> DirectionArray:
            return signals(candles, params)

        return BoundStrategy(
            name=self.name, evaluate=run, signals=vector, warmup=self.warmup(params), params=params
        )
