"""Candles kept as their text, made into :class:`~exchanges.base.Candle` objects when read.

A replay holds every candle of its files from the start: the bundled 20,111 hourly candles as ``Candle``
objects of five ``Decimal``s each take ~16 MB, which a Raspberry Pi pays for the whole run although the feed
hands out one candle at a time. :class:`PackedCandles` keeps each candle's open time as an integer
(microseconds since the epoch) and its five numbers as the text they were validated from (~2 MB); reading one
builds the very ``Candle`` the loader validated (the same ``Decimal`` values: they are parsed from the same
text). What it does not do: keep the objects it hands out (two reads give equal, not identical, candles).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import overload

from exchanges.base import Candle

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """``moment`` (aware) as whole microseconds since the epoch: exact, unlike a float timestamp."""
    return (moment - EPOCH) // _MICRO


class PackedCandles(Sequence[Candle]):
    """One pair's candles of one timeframe, oldest first (see the module docstring). Built by
    :meth:`append` while loading; indexing and slicing as a tuple would (a slice is packed too)."""

    __slots__ = ("_fields", "_open_us", "pair", "timeframe_s")

    def __init__(self, pair: str, timeframe_s: int, open_us: array[int] | None = None,
                 fields: list[str] | None = None) -> None:
        self.pair = pair
        self.timeframe_s = timeframe_s
        self._open_us: array[int] = open_us if open_us is not None else array("q")
        self._fields: list[str] = fields if fields is not None else []

    def append(self, ts: datetime, numbers: str) -> None:
        """Add a candle: its open time and ``"open,high,low,close,volume"`` as validated."""
        self._open_us.append(micros(ts))
        self._fields.append(numbers)

    def open_us(self, index: int) -> int:
        """The open time of candle ``index`` in microseconds, without building the candle."""
        return self._open_us[index]

    def __len__(self) -> int:
        return len(self._open_us)

    @overload
    def __getitem__(self, index: int) -> Candle: ...
    @overload
    def __getitem__(self, index: slice) -> PackedCandles: ...

    def __getitem__(self, index: int | slice) -> Candle | PackedCandles:
        if isinstance(index, slice):
            return PackedCandles(self.pair, self.timeframe_s, self._open_us[index], self._fields[index])
        o, h, lo, c, v = (Decimal(x) for x in self._fields[index].split(","))
        return Candle(pair=self.pair, timeframe_s=self.timeframe_s, ts=EPOCH + self._open_us[index] * _MICRO,
                      open=o, high=h, low=lo, close=c, volume=v)

    def __iter__(self) -> Iterator[Candle]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same candles (a tuple of them included)."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # like a list: equal to a tuple, so it cannot hash like one

    def __repr__(self) -> str:
        return f"PackedCandles({self.pair!r}, {self.timeframe_s}, {len(self)} candles)"
