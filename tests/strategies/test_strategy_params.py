"""Typed parameters built from configuration dicts: wrong keys, types and values name themselves."""

from __future__ import annotations

import math

import pytest

from strategies.builtins import BUILTINS
from strategies.errors import StrategyConfigError
from strategies.momentum import MomentumParams
from strategies.params import params_from_dict, params_to_dict
from strategies.trend import TrendParams


def test_defaults_and_overrides() -> None:
    p = params_from_dict(TrendParams, {"fast": 9, "adx_threshold": 25}, strategy="trend")
    assert p == TrendParams(fast=9, adx_threshold=25.0)
    assert isinstance(p.adx_threshold, float)
    assert params_from_dict(TrendParams, None, strategy="trend") == TrendParams()


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_round_trips_its_defaults(name: str) -> None:
    entry = BUILTINS[name]
    defaults = entry.default_params()
    assert entry.params(params_to_dict(defaults)) == defaults


def test_unknown_key_is_named() -> None:
    with pytest.raises(StrategyConfigError, match=r"'trend'.*fats"):
        params_from_dict(TrendParams, {"fats": 9}, strategy="trend")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"fast": 9.5}, "trend.fast"),
        ({"fast": True}, "trend.fast"),
        ({"fast": "9"}, "trend.fast"),
        ({"adx_threshold": "high"}, "trend.adx_threshold"),
        ({"adx_threshold": math.nan}, "trend.adx_threshold"),
        ({"stop_atr": False}, "trend.stop_atr"),
    ],
)
def test_wrong_types_are_named(data: dict[str, object], key: str) -> None:
    with pytest.raises(StrategyConfigError, match=key.replace(".", r"\.")):
        params_from_dict(TrendParams, data, strategy="trend")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"fast": 30, "slow": 10}, "trend.fast"),
        ({"fast": 1}, "trend.fast"),
        ({"adx_threshold": 120.0}, "trend.adx_threshold"),
        ({"stop_atr": 0.0}, "trend.stop_atr"),
        ({"take_profit_atr": -1.0}, "trend.take_profit_atr"),
    ],
)
def test_out_of_range_values_are_named(data: dict[str, object], key: str) -> None:
    with pytest.raises(StrategyConfigError, match=key.replace(".", r"\.")):
        params_from_dict(TrendParams, data, strategy="trend")


def test_choices_are_checked() -> None:
    with pytest.raises(StrategyConfigError, match=r"momentum\.mode"):
        MomentumParams(mode="zero-line")
    assert BUILTINS["breakout"].params({"exit_line": "lower"}).exit_line == "lower"
    with pytest.raises(StrategyConfigError, match=r"mean_reversion\.exit_band"):
        BUILTINS["mean_reversion"].params({"exit_band": "lower"})
