"""Market data: validation, counted rejections, UTC-aligned higher timeframes, staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.trading.market_data import MarketData
from exchanges.base import Candle, Ticker

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def candle(minute: int, close: str = "100", *, o: str | None = None, high: str | None = None,
           low: str | None = None, v: str = "1", pair: str = "BTC/USD", tf: int = 60) -> Candle:
    c = Decimal(close)
    op = Decimal(o) if o else c
    return Candle(pair, tf, T0 + timedelta(minutes=minute), op, Decimal(high) if high else max(op, c),
                  Decimal(low) if low else min(op, c), c, Decimal(v))


def test_five_minute_candles_align_to_utc_boundaries_when_data_starts_mid_interval() -> None:
    md = MarketData(60, (300,), outlier_max_move=None)
    closed: list[Candle] = []
    # data starts at 00:03, i.e. in the middle of the 00:00-00:05 bucket
    for minute in range(3, 16):
        ing = md.add_candle(candle(minute, str(100 + minute), o=str(100 + minute)))
        assert ing.accepted
        closed.extend(ing.closed_higher)
    starts = [c.ts for c in closed]
    # the partial 00:00 bucket is never emitted; 00:05 and 00:10 are, on true boundaries
    assert starts == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    first = closed[0]
    assert first.open == Decimal(105) and first.close == Decimal(109)
    assert first.high == Decimal(109) and first.low == Decimal(105)
    assert first.volume == Decimal(5)
    assert md.rejected["incomplete higher-timeframe bucket"] == 1
    w = md.window("BTC/USD", 10, 300)
    assert list(w.ts) == [int(s.timestamp()) for s in starts]
    assert all(ts % 300 == 0 for ts in w.ts)


def test_gap_inside_a_bucket_is_not_emitted_as_whole() -> None:
    md = MarketData(60, (300,), outlier_max_move=None)
    out: list[Candle] = []
    for minute in (0, 1, 2, 4, 5, 6, 7, 8, 9):  # 00:03 is missing
        out.extend(md.add_candle(candle(minute)).closed_higher)
    assert [c.ts for c in out] == [T0 + timedelta(minutes=5)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (candle(1, "100", low="101", high="102"), "inconsistent high/low"),
        (candle(1, "-1"), "non-positive price"),
        (candle(1, "0"), "non-positive price"),
        (candle(1, "100", v="-1"), "negative volume"),
        (Candle("BTC/USD", 60, T0 + timedelta(minutes=1), Decimal("NaN"), Decimal(1), Decimal(1), Decimal(1),
                Decimal(1)), "non-finite value"),
        (candle(0), "duplicate candle"),
        (candle(-1), "out-of-order candle"),
    ],
)
def test_bad_candles_are_rejected_with_a_counted_reason(bad: Candle, reason: str) -> None:
    md = MarketData(60, outlier_max_move=None)
    assert md.add_candle(candle(0)).accepted
    ing = md.add_candle(bad)
    assert not ing.accepted and ing.reason == reason
    assert md.rejected[reason] == 1
    assert md.bars("BTC/USD") == 1


def test_zero_volume_candle_is_kept() -> None:
    md = MarketData(60)
    assert md.add_candle(candle(0, v="0")).accepted


def test_outlier_filter_is_configurable_and_counted() -> None:
    strict = MarketData(60, outlier_max_move=Decimal("0.2"))
    strict.add_candle(candle(0, "100"))
    assert not strict.add_candle(candle(1, "130")).accepted
    assert strict.rejected["outlier move"] == 1
    loose = MarketData(60, outlier_max_move=Decimal("0.5"))
    loose.add_candle(candle(0, "100"))
    assert loose.add_candle(candle(1, "130")).accepted  # a real 30% crypto move is kept


def test_staleness_and_ticker_price() -> None:
    md = MarketData(60)
    md.add_candle(candle(0, "100"))
    close_time = T0 + timedelta(minutes=1)
    assert md.age_s("BTC/USD", close_time + timedelta(seconds=30)) == 30
    md.add_ticker(Ticker("BTC/USD", Decimal(101), Decimal(102), Decimal("101.5"), close_time + timedelta(seconds=40)))
    assert md.price("BTC/USD") == Decimal("101.5")
    assert md.age_s("BTC/USD", close_time + timedelta(seconds=45)) == 5
    assert md.age_s("ETH/USD", close_time) is None


def test_buffer_is_bounded_and_windows_are_copies() -> None:
    md = MarketData(60, capacity=50, outlier_max_move=None)
    for m in range(500):
        md.add_candle(candle(m, str(100 + m % 7)))
    w = md.window("BTC/USD", 1000)
    assert len(w) == 50
    assert w.ts[-1] == int((T0 + timedelta(minutes=499)).timestamp())
    w.close[:] = 0
    assert md.window("BTC/USD", 5).close[-1] != 0
