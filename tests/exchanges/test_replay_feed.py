"""Replay: CSV validation, the bundled candles, pacing, clock driving and resuming."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.base import Candle
from exchanges.clock import SimClock
from exchanges.replay import Reject, ReplayError, ReplayFeed, load_bundled, load_csv, parse_rows

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HEADER = "timestamp,open,high,low,close,volume"


def hour(i: int) -> str:
    return (T0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def series(n: int, pair: str = "BTC/USD", start: int = 0) -> list[Candle]:
    return [Candle(pair=pair, timeframe_s=3600, ts=T0 + timedelta(hours=start + i), open=Decimal(100 + i),
                   high=Decimal(101 + i), low=Decimal(99 + i), close=Decimal(100 + i), volume=Decimal(1))
            for i in range(n)]


def test_each_kind_of_bad_row_is_rejected_and_counted(tmp_path: Path) -> None:
    rows = [
        HEADER,
        f"{hour(0)},100.10,101,99,100.5,12.5",
        f"{hour(1)},NaN,101,99,100,1",
        f"{hour(2)},100,101,-99,100,1",
        f"{hour(3)},100,101,0,100,1",
        f"{hour(4)},100,99,101,100,1",
        f"{hour(5)},102,101,99,100,1",
        f"{hour(6)},100,101,99,100,-1",
        f"{hour(7)},100,101,99,100,1",
        f"{hour(7)},100,101,99,100,1",
        f"{hour(6)},100,101,99,100,1",
        f"{hour(8)},100,101,99",
        "yesterday,100,101,99,100,1",
        f"{hour(9)},100,101,99,100,0",
        "",
        f"{hour(10)},100,101,99,100,Infinity",
        f"{hour(11)},100.00000001,101,99,100,3",
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    s = load_csv(path, "BTC/USD", timeframe_s=3600)
    r = s.report
    assert r.rejected == {Reject.NOT_FINITE: 2, Reject.NEGATIVE_PRICE: 1, Reject.ZERO_PRICE: 1,
                          Reject.HIGH_BELOW_LOW: 1, Reject.OUTSIDE_RANGE: 1, Reject.NEGATIVE_VOLUME: 1,
                          Reject.DUPLICATE: 1, Reject.OUT_OF_ORDER: 1, Reject.MALFORMED: 1, Reject.BAD_TIMESTAMP: 1}
    assert (r.rows, r.accepted, r.rejected_total) == (15, 4, 11)
    assert [ts for ts, _ in [(c.ts, c) for c in s.candles]] == [T0 + timedelta(hours=h) for h in (0, 7, 9, 11)]
    assert s.timeframe_s == 3600 and r.gaps == 8
    first = s.candles[0]
    assert (first.open, first.close, first.volume) == (Decimal("100.10"), Decimal("100.5"), Decimal("12.5"))
    assert s.candles[-1].open == Decimal("100.00000001")  # never through a float
    assert r.zero_volume == 1 and s.is_filler(s.candles[2]) and not s.is_filler(first)
    assert r.samples[0] == (3, Reject.NOT_FINITE)


def test_unusable_files_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="cannot read"):
        load_csv(tmp_path / "missing.csv", "BTC/USD")
    with pytest.raises(ReplayError, match="expected header"):
        parse_rows(["date,o,h,l,c", "x"], "BTC/USD")
    with pytest.raises(ReplayError, match="timeframe"):
        parse_rows([HEADER, f"{hour(0)},1,1,1,1,1"], "BTC/USD")
    assert parse_rows([HEADER, f"{hour(0)},1,1,1,1,1"], "BTC/USD", timeframe_s=60).timeframe_s == 60
    inferred = parse_rows([HEADER] + [f"{hour(h)},1,1,1,1,1" for h in (0, 1, 2, 5)], "BTC/USD")
    assert inferred.timeframe_s == 3600 and inferred.report.gaps == 2


def test_a_file_that_is_not_utf8_is_named_and_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    rows = "\n".join([HEADER, *(f"{hour(h)},1,1,1,1,1" for h in range(3))]) + "\n"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(rows.replace(",1,1,1,1,1\n", ",1,1,1,1,1 caf\xe9\n", 1).encode("latin-1"))
    with pytest.raises(ReplayError, match=r"cannot read candles from .*latin\.csv: not UTF-8 text"):
        load_csv(latin, "BTC/USD")  # a UnicodeDecodeError naming no file, before
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + rows.encode())  # what a spreadsheet saves as "CSV UTF-8"
    assert len(load_csv(marked, "BTC/USD", timeframe_s=3600).candles) == 3


def test_bundled_coinbase_candles() -> None:
    s = load_bundled()
    assert (s.pair, s.timeframe_s, len(s.candles)) == ("BTC/USD", 3600, 20111)
    assert s.report.rejected_total == 0 and s.report.gaps == 0 and s.report.zero_volume == 28
    assert s.candles[0].ts == datetime(2017, 7, 1, 11, tzinfo=UTC)
    assert s.candles[0].open == Decimal("2505.56") and s.candles[-1].ts == datetime(2019, 10, 17, 9, tzinfo=UTC)
    filler = next(c for c in s.candles if s.is_filler(c))
    assert filler.volume == 0 and filler.open == filler.high == filler.low == filler.close


async def test_pacing_follows_speed_in_wall_time() -> None:
    feed = ReplayFeed({"BTC/USD": series(20)}, speed=200)
    t0 = time.monotonic()
    got = [c async for c in feed]
    elapsed = time.monotonic() - t0
    assert len(got) == 20 and 0.08 <= elapsed < 2.0  # 19 intervals of 5 ms; the bound allows a loaded machine
    t0 = time.monotonic()
    assert len([c async for c in ReplayFeed({"BTC/USD": series(3000)}, speed=0)]) == 3000
    assert len([c async for c in ReplayFeed({"BTC/USD": series(10)}, speed=float("inf"))]) == 10
    # unpaced: any pacing at all (even 100 candles/s) would take 30 s for these 3,010 candles
    assert time.monotonic() - t0 < 10.0


async def test_pairs_merge_in_close_order_and_drive_the_sim_clock() -> None:
    clock = SimClock(T0)
    feed = ReplayFeed({"ETH/USD": series(3, "ETH/USD"), "BTC/USD": series(3, "BTC/USD", start=1)}, clock=clock)
    seen = []
    async for c in feed:
        assert clock.now() == c.ts + timedelta(hours=1)  # "now" is the moment the candle closed
        seen.append((c.ts, c.pair))
    assert seen == sorted(seen) and len(seen) == 6
    assert feed.cursor == T0 + timedelta(hours=3) and feed.cursors["ETH/USD"] == T0 + timedelta(hours=2)


async def test_sleepers_on_the_sim_clock_wake_as_the_replay_passes() -> None:
    clock = SimClock(T0)
    woke: list[datetime] = []

    async def nap() -> None:
        await clock.sleep(2.5 * 3600)
        woke.append(clock.now())

    task = asyncio.create_task(nap())
    await asyncio.sleep(0)
    async for c in ReplayFeed({"BTC/USD": series(5)}, clock=clock):
        await asyncio.sleep(0)
        if c.ts < T0 + timedelta(hours=2):
            assert not woke
    await task
    assert woke == [T0 + timedelta(hours=3)]


async def test_resume_after_a_cursor_continues_where_it_stopped() -> None:
    data = {"BTC/USD": series(10), "ETH/USD": series(10, "ETH/USD")}
    first = ReplayFeed(data)
    emitted = []
    async for c in first:
        emitted.append(c)
        if len(emitted) == 5:  # stop between the two pairs' candles of one hour
            break
    resumed = ReplayFeed(data, resume_after=dict(first.cursors))
    rest = [c async for c in resumed]
    assert emitted + rest == [c async for c in ReplayFeed(data)]
    by_time = [c async for c in ReplayFeed(data, resume_after=first.cursor)]
    assert by_time[0].ts == first.cursor + timedelta(hours=1)  # type: ignore[operator]
    by_index = [c async for c in ReplayFeed(data, start_index=first.position)]
    assert by_index == rest


async def test_sim_clock_rules() -> None:
    clock = SimClock(T0)
    with pytest.raises(ValueError):
        clock.advance_to(T0 - timedelta(seconds=1))
    with pytest.raises(ValueError):
        clock.advance_to(datetime(2024, 1, 2))
    waiting = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    clock.advance(59)
    await asyncio.sleep(0)
    assert not waiting.done() and clock.sleepers == 1
    clock.advance(timedelta(seconds=1))
    await asyncio.wait_for(waiting, 1)
    auto = SimClock(T0, auto_advance=True)
    await asyncio.wait_for(auto.sleep(3600), 1)
    assert auto.now() == T0 + timedelta(hours=1)
