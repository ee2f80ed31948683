"""Engine mode's incremental strategy evaluation: candles where no strategy can have a setup.

A backtest knows the whole series in advance, and every built-in strategy has a vectorized form
(``signals()``, +1/-1/0 for each candle, TA-Lib over the series in one call). Where every enabled
strategy's vectorized signal is 0, each member would vote HOLD, the confluence score is 0 and the
combined signal is HOLD whatever the thresholds, weights or higher-timeframe filter: the engine can
skip building the window and the worker-thread scan (:class:`~core.trading.engine.Engine`'s
``prescan``). Everywhere else the engine runs the configured strategy set exactly as live does.

Exactness rests on the property fast mode rests on (see :mod:`core.backtest.fast`): a strategy's
signal on its sliding window of ``trading.history_bars`` equals its vectorized signal over the whole
series. For SMAs that holds up to float rounding; recursive indicators (EMA, ATR, ADX, MACD) started
at different candles agree only to many digits, which can move a signal on an exact tie.
``RunSpec(prescan=False)`` (``--full-scan``) turns this off and scans every candle.

Not done: external strategies have no vectorized form, so a set with one is scanned on every candle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import numpy as np

from core.backtest.data import Bars
from exchanges.base import Candle
from strategies.base import Signal
from strategies.scanner import StrategySet

NAME = "confluence"


def quiet_candles(strategies: StrategySet, bars: Bars) -> frozenset[datetime] | None:
    """The open times of the candles where every member's vectorized signal is 0 (None: a member
    has no vectorized form, nothing can be skipped)."""
    if any(m.signals is None for m in strategies.members):
        return None
    a = bars.arrays
    active = np.zeros(len(a.ts), dtype=np.bool_)
    for member in strategies.members:
        assert member.signals is not None
        active |= np.asarray(member.signals(a)) != 0
    assert bars.candles is not None
    return frozenset(c.ts for c, busy in zip(bars.candles, active.tolist(), strict=True) if not busy)


def prescan(strategies: StrategySet, series: Mapping[str, Bars]) -> Callable[[Candle], Signal | None] | None:
    """The engine's ``prescan`` for these series: HOLD on a quiet candle, None (scan) elsewhere."""
    quiet: dict[str, frozenset[datetime]] = {}
    for pair, bars in series.items():
        known = quiet_candles(strategies, bars)
        if known is None:
            return None
        quiet[pair] = known
    holds = {pair: Signal.hold(pair, NAME, "no strategy has a setup (vectorized signals)") for pair in series}

    def answer(candle: Candle) -> Signal | None:
        q = quiet.get(candle.pair)
        return holds[candle.pair] if q is not None and candle.ts in q else None

    return answer
