"""Fast mode's exact trade list, kept as whole numbers and turned into ``Decimal`` trades when read.

A million-candle run makes tens of thousands of round trips. Building each :class:`Trade` with the
paper venue's ``Decimal`` arithmetic per fill (slipped price, rounded fee) cost about 14 µs a trade,
three times the walk that found them. Here every fill price is held as a whole number of price ticks
and every fee as a whole number of :data:`~exchanges.paper.model.FEE_QUANTUM`, found for all fills at
once with integer arrays; :class:`FastTrades` makes a trade's ``Decimal`` values from those integers
only when the trade is read, with the same arithmetic (and so the same values, exponents included) as
the per-fill construction, which ``tests/core/backtest/test_fasttrades.py`` checks.

Why the integers are exact: the walk's fill prices are the ``float`` nearest the exact prices
(:func:`core.backtest.fastlane._fill_prices`). An exact price is ``c`` ticks of ``a * 10**-d``; when a
candidate ``c`` below 10**14 gives back that very float, no other decimal of at most 15 significant
digits does, so ``c`` is the one. Fills where that check fails, and every fill of real candles (whose
``Decimal`` prices may carry more digits than a float), are priced one by one with the venue's own
functions. Fees are ``qty * price * rate`` rounded half up, in integers while they fit in 62 bits (well
inside ``Decimal``'s 28 digits), else one by one too. Only the long fixed-size lane
(:func:`core.backtest.fast._lane`) uses this; the general loop builds its trades as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import overload

import numpy as np
import numpy.typing as npt

from core.backtest.fastloop import Fill
from core.backtest.model import Trade
from core.trading.accounting import price_q

Q = Decimal("0.00000001")
CENTS = Decimal("0.01")
LIMIT = 2**62  # the largest integer product kept in int64 arrays
Ints = npt.NDArray[np.int64]


def digits(value: Decimal) -> tuple[int, int]:
    """``value`` as ``(m, d)`` with ``value == m * 10**-d``, ``m`` a whole number, ``d >= 0``."""
    sign, ds, exp = value.normalize().as_tuple()
    m = int("".join(map(str, ds))) * (-1 if sign else 1)
    assert isinstance(exp, int)
    return (m * 10**exp, 0) if exp > 0 else (m, -exp)


@dataclass(frozen=True, slots=True)
class Fills:
    """Whole fills of one side: the candle, the price in ticks, the fee in units of 1e-8."""

    bar: Ints
    ticks: Ints
    fee: Ints


def integer_fills(bars: Ints, prices: list[float], *, qty: Decimal, tick: Decimal, rate: Decimal, exact: bool,
          price_fill: Callable[[int], Fill]) -> Fills:
    """Integer fills at ``bars`` from the walk's float ``prices``; ``exact=False`` prices each one in Decimal."""
    a, d = digits(tick)
    q, qd = digits(qty)
    r, rd = digits(rate)
    p = np.asarray(prices, dtype=np.float64)
    ticks = np.rint(p * 10.0**d / a) if d <= 22 else np.zeros_like(p)
    ok = np.zeros(p.shape, dtype=np.bool_)
    if exact and d <= 22:
        ok = (ticks >= 1) & (ticks * a < 1e14) & ((ticks * a) / 10.0**d == p)
    c = ticks.astype(np.int64)
    fee = np.zeros(c.shape, dtype=np.int64)
    shift = qd + d + rd - 8  # the fee in 1e-8 units is q*c*a*r / 10**shift, rounded half up
    top = int(c.max(initial=0)) * q * a * r
    if shift <= 18 and top * 10 ** max(0, -shift) < LIMIT:
        n = c * (q * a * r)
        fee = n * 10 ** -shift if shift <= 0 else (n + 5 * 10 ** (shift - 1)) // 10**shift
    else:
        ok[:] = False
    for i in np.flatnonzero(~ok).tolist():
        f = price_fill(int(bars[i]))
        c[i] = int(f.price / tick)
        fee[i] = int(f.fee.scaleb(8))
    return Fills(bar=np.asarray(bars, dtype=np.int64), ticks=c, fee=fee)


def total_pnl(qty: Decimal, tick: Decimal, buys: Fills, sells: Fills) -> Decimal | None:
    """The sum of the closed trades' PnL, each quantized to 1e-8 as :class:`Trade` holds it; None: too big."""
    k = int(sells.bar.size)
    if k == 0:
        return None
    q, qd = digits(qty)
    a, d = digits(tick)
    u = max(qd + d, 8)  # the PnL in units of 10**-u is exact
    if u - 8 > 18:
        return None
    gross = q * a * 10 ** (u - qd - d)
    moves = sells.ticks - buys.ticks[:k]
    fees = buys.fee[:k] + sells.fee
    bound = int(np.abs(moves).max()) * gross + int(fees.max()) * 10 ** (u - 8)
    if bound * 2 >= LIMIT // max(1, k):
        return None
    pnl = moves * gross - fees * 10 ** (u - 8)
    if u > 8:  # round half to even, as Decimal.quantize does by default
        unit = 10 ** (u - 8)
        low = pnl // unit
        rest = pnl - low * unit
        pnl = low + ((2 * rest > unit) | ((2 * rest == unit) & (low % 2 == 1)))
    return Decimal(int(pnl.sum())).scaleb(-8)


class FastTrades(Sequence[Trade]):
    """The closed round trips as integer records (and the one left open, built at once), read as Trades.

    Each trade is made on first read and kept; it equals, value and exponent, what the per-fill
    ``Decimal`` construction made.
    """

    def __init__(self, *, pair: str, qty: Decimal, tick: Decimal, ts: Ints, buys: Fills, sells: Fills,
                 still_open: Trade | None) -> None:
        self._pair, self._qty, self._tick, self._ts = pair, qty, tick, ts
        self.buys, self.sells, self._open = buys, sells, still_open
        self._a, self._d = digits(tick)
        self._closed = int(sells.bar.size)
        self._made: list[Trade | None] = [None] * self._closed
        self._rows: list[tuple[int, ...]] | None = None  # the records as Python ints, made on first read

    def __len__(self) -> int:
        return self._closed + (self._open is not None)

    def shifted(self, offset: int) -> FastTrades:
        """The same trades with their bars counted from candle ``offset`` (none may start before it)."""
        def move(fills: Fills) -> Fills:
            return Fills(bar=fills.bar - offset, ticks=fills.ticks, fee=fills.fee)
        still_open = self._open and replace(self._open, entry_bar=self._open.entry_bar - offset)
        return FastTrades(pair=self._pair, qty=self._qty, tick=self._tick, ts=self._ts[offset:],
                          buys=move(self.buys), sells=move(self.sells), still_open=still_open)

    @overload
    def __getitem__(self, i: int) -> Trade: ...

    @overload
    def __getitem__(self, i: slice) -> list[Trade]: ...

    def __getitem__(self, i: int | slice) -> Trade | list[Trade]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError("trade index out of range")
        i %= n
        if i == self._closed:
            assert self._open is not None
            return self._open
        made = self._made[i]
        if made is None:
            made = self._made[i] = self._make(i)
        return made

    def __iter__(self) -> Iterator[Trade]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(
            x == y for x, y in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # like a list: equal to a tuple, so it cannot hash like one

    def __repr__(self) -> str:
        return f"FastTrades({len(self)} trades of {self._pair})"

    def _make(self, i: int) -> Trade:
        """The arithmetic of the per-fill construction, on the same values."""
        if self._rows is None:
            b, s, k = self.buys, self.sells, self._closed
            self._rows = list(zip(b.bar[:k].tolist(), s.bar.tolist(), self._ts[b.bar[:k]].tolist(),
                                  self._ts[s.bar].tolist(), (b.ticks[:k] * self._a).tolist(),
                                  (s.ticks * self._a).tolist(), b.fee[:k].tolist(), s.fee.tolist(), strict=True))
        f, g, buy_ts, sell_ts, buy_units, sell_units, buy_fee_units, sell_fee_units = self._rows[i]
        qty, d = self._qty, -self._d
        buy_price, sell_price = Decimal(buy_units).scaleb(d), Decimal(sell_units).scaleb(d)
        buy_fee, sell_fee = Decimal(buy_fee_units).scaleb(-8), Decimal(sell_fee_units).scaleb(-8)
        cost = qty * buy_price + buy_fee
        pnl = qty * sell_price - sell_fee - cost
        return Trade(pair=self._pair, entry_bar=f, exit_bar=g,
                     entry_time=datetime.fromtimestamp(buy_ts, UTC), exit_time=datetime.fromtimestamp(sell_ts, UTC),
                     qty=qty,
                     entry_price=price_q(buy_price), exit_price=price_q(sell_price), fees=buy_fee + sell_fee,
                     pnl=pnl.quantize(Q), pnl_pct=(pnl / cost * 100).quantize(CENTS), exit_reason="exit")
