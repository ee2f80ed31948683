"""The strategy set's configuration as a frozen value, buildable from a plain mapping.

The field names match the ``[strategies]`` section of the service settings, so
``StrategyConfig.from_mapping(settings.strategies.model_dump())`` works; ``load_strategies`` does
that by itself when handed the settings object. This package does not import the settings models:
strategies sit below the service layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from strategies.errors import StrategyConfigError
from strategies.external import ExternalSpec

DEFAULT_ENABLED: tuple[str, ...] = ("trend", "mean_reversion", "momentum", "breakout", "candles")


def _frozen_map() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Which strategies run, with what parameters, and how their votes combine.

    ``enabled`` names built-ins (external strategies are enabled by being listed in ``external``;
    naming them in ``enabled`` too is allowed). ``params`` and ``weights`` are keyed by strategy
    name; a strategy without a weight gets 1.0 (an external one its own ``weight``). Any value of
    ``higher_timeframe`` switches on the higher-timeframe confirmation of entries, judged with an
    EMA of ``higher_timeframe_ema`` candles. ``budget_s`` is the per-call time budget of each
    strategy.
    """

    enabled: tuple[str, ...] = DEFAULT_ENABLED
    params: Mapping[str, Mapping[str, object]] = field(default_factory=_frozen_map)
    weights: Mapping[str, float] = field(default_factory=_frozen_map)
    external: tuple[ExternalSpec, ...] = ()
    entry_threshold: float = 0.2
    exit_threshold: float = 0.2
    higher_timeframe: str | None = None
    higher_timeframe_ema: int = 50
    budget_s: float = 0.05

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> StrategyConfig:
        """Build from plain data; unknown keys and malformed values raise naming the key."""
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise StrategyConfigError(
                f"unknown strategies setting(s): {', '.join(unknown)} (known: {', '.join(sorted(allowed))})"
            )
        values: dict[str, Any] = {}
        if "enabled" in data:
            values["enabled"] = _names("enabled", data["enabled"])
        if "params" in data:
            values["params"] = _params(data["params"])
        if "weights" in data:
            values["weights"] = _mapping("weights", data["weights"])
        if "external" in data:
            values["external"] = tuple(_external(i, item) for i, item in enumerate(data["external"] or ()))
        for key in ("entry_threshold", "exit_threshold", "budget_s"):
            if key in data:
                values[key] = _number(key, data[key])
        if "higher_timeframe" in data:
            htf = data["higher_timeframe"]
            if htf is not None and not isinstance(htf, str):
                raise StrategyConfigError(f"higher_timeframe must be a string such as '4h', got {htf!r}")
            values["higher_timeframe"] = htf
        if "higher_timeframe_ema" in data:
            ema = data["higher_timeframe_ema"]
            if isinstance(ema, bool) or not isinstance(ema, int):
                raise StrategyConfigError(f"higher_timeframe_ema must be an integer, got {ema!r}")
            values["higher_timeframe_ema"] = ema
        return cls(**values)


def _names(key: str, raw: object) -> tuple[str, ...]:
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise StrategyConfigError(f"{key} must be a list of strategy names, got {raw!r}")
    for item in raw:
        if not isinstance(item, str):
            raise StrategyConfigError(f"{key} must contain strategy names, got {item!r}")
    return tuple(raw)


def _mapping(key: str, raw: object) -> Mapping[str, Any]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise StrategyConfigError(f"{key} must be a table keyed by strategy name, got {raw!r}")
    return MappingProxyType(dict(raw))


def _params(raw: object) -> Mapping[str, Mapping[str, object]]:
    table = _mapping("params", raw)
    out: dict[str, Mapping[str, object]] = {}
    for name, values in table.items():
        out[name] = _mapping(f"params.{name}", values)
    return MappingProxyType(out)


def _number(key: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise StrategyConfigError(f"{key} must be a finite number, got {raw!r}")
    return float(raw)


def _external(index: int, item: object) -> ExternalSpec:
    if isinstance(item, ExternalSpec):
        return item
    where = f"external[{index}]"
    if not isinstance(item, Mapping):
        raise StrategyConfigError(f"{where} must be a table with name, path and sha256, got {item!r}")
    unknown = sorted(set(item) - {"name", "path", "sha256", "weight"})
    if unknown:
        raise StrategyConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name, path = item.get("name"), item.get("path")
    if not isinstance(name, str) or not name:
        raise StrategyConfigError(f"{where}.name must be a non-empty string, got {name!r}")
    if not isinstance(path, (str, Path)):
        raise StrategyConfigError(f"{where}.path ({name}) must be a file path, got {path!r}")
    sha = item.get("sha256")
    if sha is not None and not isinstance(sha, str):
        raise StrategyConfigError(f"{where}.sha256 ({name}) must be a hex string, got {sha!r}")
    weight = _number(f"{where}.weight ({name})", item.get("weight", 1.0))
    return ExternalSpec(name=name, path=Path(path), sha256=sha, weight=weight)
