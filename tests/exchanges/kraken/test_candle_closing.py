"""Running candles in, closed candles out: once each, in order (shared by both adapters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from exchanges._stream import CandleCloser
from exchanges.base import Candle
from tests.fakes.clock import ManualClock

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def candle(minute: int, close: str = "1", pair: str = "BTC/USD") -> Candle:
    one = Decimal(1)
    return Candle(pair, 60, T0 + timedelta(minutes=minute), one, one, one, Decimal(close), one)


def test_a_candle_closes_when_the_next_one_starts() -> None:
    closer = CandleCloser(60, ManualClock(T0 + timedelta(seconds=30)))
    assert closer.update(candle(0, "1")) == []
    assert closer.update(candle(0, "2")) == []          # running candle updated
    assert closer.update(candle(1, "3")) == [candle(0, "2")]


def test_a_quiet_market_closes_the_candle_by_the_clock() -> None:
    clock = ManualClock(T0 + timedelta(seconds=30))
    closer = CandleCloser(60, clock, grace_s=2)
    closer.update(candle(0))
    clock.advance(31)
    assert closer.tick() == []                           # within the grace period
    clock.advance(1)
    assert closer.tick() == [candle(0)]


def test_old_candles_are_closed_at_once_and_duplicates_dropped() -> None:
    closer = CandleCloser(60, ManualClock(T0 + timedelta(minutes=10)))
    assert closer.update_many([candle(2), candle(1), candle(3)]) == [candle(1), candle(2), candle(3)]
    assert closer.update_many([candle(2), candle(3)]) == []
    assert closer.last_closed("BTC/USD") == T0 + timedelta(minutes=3)


def test_pairs_are_independent() -> None:
    closer = CandleCloser(60, ManualClock(T0 + timedelta(minutes=10)))
    out = closer.update_many([candle(1, pair="ETH/USD"), candle(0), candle(2, pair="ETH/USD")])
    assert [(c.pair, c.ts.minute) for c in out] == [("BTC/USD", 0), ("ETH/USD", 1), ("ETH/USD", 2)]


def test_after_a_disconnect_the_running_candle_is_forgotten() -> None:
    closer = CandleCloser(60, ManualClock(T0 + timedelta(seconds=10)))
    closer.update(candle(0, "1"))
    closer.drop_running()
    assert closer.tick() == [] and closer.last_closed("BTC/USD") is None
