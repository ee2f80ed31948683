"""Typed strategy parameters: validation helpers and construction from configuration dicts.

Every strategy's parameters are a frozen dataclass whose fields are ``int``, ``float``, ``bool`` or
``str`` — the value types a TOML file or environment override can carry. :func:`params_from_dict`
builds one from a plain mapping and refuses anything it does not understand, naming the key: an
unknown key is almost always a typo, and silently ignoring it would run the strategy with a default
the user believes they changed.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from strategies.errors import StrategyConfigError

P = TypeVar("P")

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def params_from_dict(cls: type[P], data: Mapping[str, object] | None, *, strategy: str) -> P:
    """Build ``cls`` from ``data``; unknown keys, wrong types and bad values raise naming the key.

    Integers are accepted for float fields; booleans are never accepted as numbers (``True`` is an
    ``int`` in Python, but ``period = true`` in a config file is a mistake). Non-finite floats are
    rejected.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise StrategyConfigError(
            f"unknown parameter(s) for strategy {strategy!r}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(fields))})"
        )
    values: dict[str, Any] = {}
    for key, raw in data.items():
        values[key] = _coerce(strategy, key, raw, hints[key])
    try:
        return cls(**values)
    except StrategyConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise StrategyConfigError(f"strategy {strategy!r}: {exc}") from exc


def params_to_dict(params: object) -> dict[str, object]:
    """The inverse of :func:`params_from_dict`, for display and round-trips."""
    if not dataclasses.is_dataclass(params) or isinstance(params, type):
        raise TypeError(f"{params!r} is not a dataclass instance")
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def _coerce(strategy: str, key: str, raw: object, expected: object) -> object:
    where = f"{strategy}.{key}"
    if expected is bool:
        if isinstance(raw, bool):
            return raw
    elif expected is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif expected is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
            if not math.isfinite(value):
                raise StrategyConfigError(f"{where} must be a finite number, got {raw!r}")
            return value
    elif expected is str:
        if isinstance(raw, str):
            return raw
    else:
        raise TypeError(f"{where}: unsupported parameter type {expected!r}")
    wanted = _TYPE_NAMES[expected]
    raise StrategyConfigError(f"{where} must be {wanted}, got {type(raw).__name__} {raw!r}")


# -- checks used by the parameter dataclasses' __post_init__ ---------------------------------------


def check_period(strategy: str, name: str, value: int, minimum: int = 2) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StrategyConfigError(f"{strategy}.{name} must be an integer >= {minimum}, got {value!r}")


def check_positive(strategy: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise StrategyConfigError(f"{strategy}.{name} must be a finite number {bound}, got {value!r}")


def check_range(strategy: str, name: str, value: float, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise StrategyConfigError(f"{strategy}.{name} must be between {low} and {high}, got {value!r}")


def check_less(strategy: str, low_name: str, low: float, high_name: str, high: float) -> None:
    if not low < high:
        raise StrategyConfigError(
            f"{strategy}.{low_name} ({low!r}) must be less than {strategy}.{high_name} ({high!r})"
        )


def check_choice(strategy: str, name: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        raise StrategyConfigError(
            f"{strategy}.{name} must be one of {', '.join(sorted(choices))}, got {value!r}"
        )
