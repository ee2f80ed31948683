"""Candles kept as their text, made into :class:`~exchanges.base.Candle` objects when read.

A replay holds every candle of its files from the start: the bundled 20,111 hourly candles as ``Candle``
objects of five ``Decimal``s each take ~16 MB, which a Raspberry Pi pays for the whole run although the feed
hands out one candle at a time. :class:`PackedCandles` keeps each candle's open time as an integer
(microseconds since the epoch) and its five numbers as the text they were validated from, all candles' text in
one byte string with an array of where each ends (~1 MB: a ``str`` per candle would take 80 bytes more); reading one
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

    __slots__ = ("_ends", "_open_us", "_text", "pair", "timeframe_s")

    def __init__(self, pair: str, timeframe_s: int) -> None:
        self.pair = pair
        self.timeframe_s = timeframe_s
        self._open_us: array[int] = array("q")
        self._text = bytearray()  # every candle's "open,high,low,close,volume", one after another (ASCII)
        self._ends: array[int] = array("Q")  # where each candle's text ends in _text

    def append(self, ts: datetime, numbers: str) -> None:
        """Add a candle: its open time and ``"open,high,low,close,volume"`` as validated."""
        self._open_us.append(micros(ts))
        self._text += numbers.encode("ascii")
        self._ends.append(len(self._text))

    def numbers(self, index: int) -> str:
        """Candle ``index``'s ``"open,high,low,close,volume"`` text (``index`` as for a list)."""
        index = range(len(self))[index]
        return self._text[self._ends[index - 1] if index else 0:self._ends[index]].decode("ascii")

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
            part = PackedCandles(self.pair, self.timeframe_s)
            start, stop, step = index.indices(len(self))
            if step == 1 and start < stop:  # one copy of the text, its ends moved down
                first = self._ends[start - 1] if start else 0
                part._open_us = self._open_us[start:stop]
                part._text = self._text[first:self._ends[stop - 1]]
                part._ends = array("Q", (end - first for end in self._ends[start:stop]))
                return part
            for i in range(start, stop, step):
                part._open_us.append(self._open_us[i])
                part._text += self.numbers(i).encode("ascii")
                part._ends.append(len(part._text))
            return part
        o, h, lo, c, v = (Decimal(x) for x in self.numbers(index).split(","))
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
