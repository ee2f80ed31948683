"""Strategies run contained: failures and slow calls are counted, never raised."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from strategies.base import Candles, Direction, Signal
from strategies.builtins import BUILTINS
from strategies.confluence import Confluence
from strategies.runner import StrategyRunner
from strategies.scanner import StrategySet
from strategies.spec import BoundStrategy
from tests.strategies.candle_data import window


def explode(candles: Candles) -> Signal:
    raise ZeroDivisionError("division by zero in my indicator")


def test_a_raising_strategy_is_contained_and_counted(btc: Candles) -> None:
    runner = StrategyRunner()
    c = window(btc, 0, 300)
    first = runner.run("broken", explode, c)
    assert not first.ok
    assert first.signal.direction == Direction.HOLD and first.signal.strategy == "broken"
    assert "ZeroDivisionError" in (first.error or "") and "strategy error" in first.signal.reason
    runner.run("broken", explode, c)
    ok = runner.run("trend", BUILTINS["trend"].bind().evaluate, c)
    assert ok.ok and ok.error is None
    stats = runner.stats()
    assert stats["broken"].calls == 2 and stats["broken"].errors == 2
    assert stats["broken"].last_error == "ZeroDivisionError: division by zero in my indicator"
    assert stats["trend"].calls == 1 and stats["trend"].errors == 0 and stats["trend"].last_error is None


@pytest.mark.parametrize(
    ("produced", "problem"),
    [
        ("buy", "expected a Signal"),
        (Signal("BTC/USD", Direction.BUY, 1.5, "too sure", "odd"), "strength"),
        (Signal("BTC/USD", Direction.BUY, float("nan"), "unsure", "odd"), "strength"),
        (Signal("ETH/USD", Direction.BUY, 0.5, "wrong pair", "odd"), "ETH/USD"),
        (Signal("BTC/USD", Direction.BUY, 0.5, "bad stop", "odd", stop=Decimal("-1")), "stop"),
        (Signal("BTC/USD", Direction.BUY, 0.5, "float stop", "odd", stop=95.0), "stop"),  # type: ignore[arg-type]
    ],
)
def test_an_unusable_return_value_is_an_error(btc: Candles, produced: object, problem: str) -> None:
    runner = StrategyRunner()
    result = runner.run("odd", lambda c: produced, window(btc, 0, 100))  # type: ignore[arg-type,return-value]
    assert not result.ok and problem in (result.error or "")
    assert result.signal.direction == Direction.HOLD
    assert runner.stats()["odd"].errors == 1


def test_calls_over_budget_are_flagged_and_counted(btc: Candles) -> None:
    def slow(candles: Candles) -> Signal:
        time.sleep(0.02)
        return Signal.hold(candles.pair, "slow")

    runner = StrategyRunner(budget_s=0.005)
    c = window(btc, 0, 50)
    result = runner.run("slow", slow, c)
    assert result.ok and result.over_budget and result.elapsed_s >= 0.02
    fast = runner.run("fast", lambda cd: Signal.hold(cd.pair, "fast"), c)
    assert not fast.over_budget
    stats = runner.stats()
    assert stats["slow"].timeouts == 1 and stats["slow"].errors == 0 and stats["slow"].max_s >= 0.02
    assert stats["fast"].timeouts == 0


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget_s"):
        StrategyRunner(budget_s=0)


def test_a_scan_survives_a_broken_member(btc: Candles) -> None:
    broken = BoundStrategy(name="broken", evaluate=explode, signals=None, warmup=None, params={})
    trend = BUILTINS["trend"].bind()
    conf = Confluence({"trend": 1.0, "broken": 1.0}, known=("trend", "broken"))
    scanner = StrategySet([trend, broken], conf)
    c = window(btc, 5000, 5500)
    result = scanner.scan(c)
    assert [r.strategy for r in result.results] == ["trend", "broken"]
    assert result.results[1].error is not None
    assert "broken missing" in result.signal.reason
    assert scanner.evaluate(c.pair, c, None).direction in set(Direction)
    assert scanner.stats()["broken"].errors == 2 and scanner.stats()["trend"].calls == 2
