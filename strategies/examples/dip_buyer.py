"""``dip_buyer``: an example external strategy, the template docs/strategies.md walks through.

Copy this file, rename ``NAME``, change ``evaluate``; pin the copy with ``tradectl strategy hash FILE``.

BUY when the last close is ``dip_pct`` percent or more below its ``period``-candle simple moving
average (a dip in a market that usually comes back), with a stop ``stop_pct`` percent below the close;
SELL when the close is back above the average; HOLD otherwise. Deliberately plain: it shows the
contract, it is not advice.

The contract (see :mod:`strategies.external`): ``NAME``, ``evaluate(candles, params) -> Signal``, and
optionally ``PARAMS`` (accepted parameters and their defaults; the configured values arrive merged
over them). ``evaluate`` sees a window of closed candles, oldest first, as float numpy arrays, and
judges only the last one. It must be a pure function: no I/O, no state kept between calls.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from strategies.base import Candles, Direction, Signal

NAME = "dip_buyer"
PARAMS: dict[str, int | float | bool | str] = {"period": 20, "dip_pct": 3.0, "stop_pct": 5.0}


def evaluate(candles: Candles, params: dict[str, Any]) -> Signal:
    period, dip, stop = int(params["period"]), params["dip_pct"] / 100, params["stop_pct"] / 100
    if period < 2 or len(candles) < period:
        return Signal.hold(candles.pair, NAME, f"warming up: {len(candles)} of {period} candles")
    close = float(candles.close[-1])
    average = float(candles.close[-period:].mean())
    if close <= average * (1 - dip):
        return Signal(pair=candles.pair, direction=Direction.BUY, strength=1.0, strategy=NAME,
                      reason=f"close {close:.6g} is {1 - close / average:.1%} below its {period}-candle average",
                      stop=Decimal(repr(close * (1 - stop))).quantize(Decimal("0.00000001")))
    if close > average:
        return Signal(pair=candles.pair, direction=Direction.SELL, strength=1.0, strategy=NAME,
                      reason=f"close {close:.6g} is back above its {period}-candle average {average:.6g}")
    return Signal.hold(candles.pair, NAME, "no dip")
