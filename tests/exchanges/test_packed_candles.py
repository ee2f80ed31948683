"""A loaded replay keeps its candles as text until they are read (exchanges.packed): what is read back is
exactly what was validated, and the feed hands out the same candles in the same order as from Candle objects."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exchanges.base import Candle
from exchanges.packed import PackedCandles
from exchanges.replay import ReplayFeed, load_bundled, parse_rows

LINES = [
    "timestamp,open,high,low,close,volume",
    "2024-01-01T00:00:00Z, 100.10 ,101.5,99.00,100.5,2.50000000",
    "2024-01-01T01:00:00.250000+00:00,100.5,100.5,100.5,100.5,0",
    "2024-01-01T02:00:00,1E+2,101,99,100,1.5",
    "2024-01-01T03:00:00Z,not,a,number,at,all",
]


def test_packed_candles_read_back_exactly_what_was_validated() -> None:
    series = parse_rows(LINES, "BTC/USD", timeframe_s=3600)
    candles = series.candles
    assert isinstance(candles, PackedCandles) and len(candles) == 3 and series.report.rejected_total == 1
    first = candles[0]
    assert first == Candle(pair="BTC/USD", timeframe_s=3600, ts=datetime(2024, 1, 1, tzinfo=UTC),
                           open=Decimal("100.10"), high=Decimal("101.5"), low=Decimal("99.00"), close=Decimal("100.5"),
                           volume=Decimal("2.50000000"))
    assert str(first.open) == "100.10" and str(candles[2].open) == "1E+2"  # the very Decimal, exponent and all
    assert candles[1].ts == datetime(2024, 1, 1, 1, 0, 0, 250000, tzinfo=UTC)  # microseconds kept
    assert series.zero_volume_ts == frozenset({candles[1].ts}) and series.is_filler(candles[1])
    assert candles[-1] == candles[2] and list(candles[1:]) == [candles[1], candles[2]]
    assert isinstance(candles[1:], PackedCandles)
    assert candles == tuple(candles) and candles != tuple(candles)[:2]


async def test_a_feed_over_packed_candles_hands_out_what_a_feed_over_candle_objects_does() -> None:
    btc = load_bundled("BTC/USD")
    eth = load_bundled("ETH/USD")  # the same prices under another label: interleaved with BTC's, pair by pair
    head = {"BTC/USD": btc.candles[:300], "ETH/USD": eth.candles[100:400]}
    packed = [c async for c in ReplayFeed(head)]
    objects = [c async for c in ReplayFeed({pair: tuple(cs) for pair, cs in head.items()})]
    assert len(packed) == 600 and packed == objects
    resumed = ReplayFeed(head, resume_after={"BTC/USD": btc.candles[199].ts})
    assert [c async for c in resumed] == [c for c in objects if c.pair != "BTC/USD" or c.ts > btc.candles[199].ts]


def test_slices_of_any_step_and_negative_indexes_read_like_a_tuples() -> None:
    candles = load_bundled("BTC/USD").candles
    assert isinstance(candles, PackedCandles)
    plain = tuple(candles[:40])
    for part in (slice(3, 17), slice(None, None, 3), slice(30, 5, -4), slice(-9, None), slice(10, 10), slice(50, 60)):
        assert list(candles[:40][part]) == list(plain[part]), part
    assert candles[-1] == candles[len(candles) - 1] and candles[:40][-40] == plain[0]
    for bad in (len(candles), -len(candles) - 1):
        with pytest.raises(IndexError):
            candles[bad]


def test_a_loaded_replay_costs_well_under_100_bytes_a_candle() -> None:
    """What a Raspberry Pi pays for the bundled 20,111 candles and a feed over them: the text, the open times
    and the feed's order in arrays -- no Python object per candle (a str per candle and a (series, index)
    tuple per event took ~170 bytes a candle)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        series = load_bundled("BTC/USD")
        feed = ReplayFeed({"BTC/USD": series.candles})
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert feed.total == len(series.candles) == 20111
    assert held / feed.total < 100, f"{held / feed.total:.0f} bytes a candle"
