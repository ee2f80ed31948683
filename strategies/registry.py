"""Built-in strategies by name, and building a runnable :class:`StrategySet` from configuration.

``load_strategies`` validates everything up front: unknown strategy names, unknown or mistyped
parameters, bad weights or thresholds, and external modules whose content does not match their
pinned SHA-256 all raise :class:`StrategyConfigError` naming the offending key, before anything
runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.builtins import BUILTIN_NAMES, BUILTINS
from strategies.config import StrategyConfig
from strategies.confluence import Confluence, HigherTimeframeTrend
from strategies.errors import StrategyConfigError
from strategies.external import load_external
from strategies.runner import StrategyRunner
from strategies.scanner import StrategySet
from strategies.spec import BoundStrategy, BuiltinStrategy

__all__ = ["BUILTINS", "BUILTIN_NAMES", "build_params", "builtin", "load_strategies"]


def builtin(name: str) -> BuiltinStrategy:
    """The built-in strategy called ``name``."""
    try:
        return BUILTINS[name]
    except KeyError:
        raise StrategyConfigError(
            f"unknown strategy {name!r} (built-in: {', '.join(BUILTIN_NAMES)})"
        ) from None


def build_params(name: str, data: Mapping[str, object] | None = None) -> Any:
    """Typed parameters for the built-in ``name`` from a plain mapping (defaults for missing keys)."""
    return builtin(name).params(data)


def load_strategies(config: StrategyConfig | Mapping[str, Any] | Any) -> StrategySet:
    """A ready :class:`StrategySet` from a :class:`StrategyConfig`, a plain mapping of the same
    keys, or any settings object with ``model_dump()`` (the service's ``[strategies]`` section).
    """
    cfg = _as_config(config)
    external_names = [e.name for e in cfg.external]
    repeated = sorted({n for n in external_names if external_names.count(n) > 1})
    if repeated:
        raise StrategyConfigError(f"external strategy listed more than once: {', '.join(repeated)}")
    clashing = sorted(set(external_names) & set(BUILTIN_NAMES))
    if clashing:
        raise StrategyConfigError(f"external strategy uses a built-in's name: {', '.join(clashing)}")

    unknown = [n for n in cfg.enabled if n not in BUILTINS and n not in external_names]
    if unknown:
        raise StrategyConfigError(
            f"unknown strategy name(s) in enabled: {', '.join(unknown)} "
            f"(built-in: {', '.join(BUILTIN_NAMES)}; external: {', '.join(external_names) or 'none'})"
        )
    known = set(BUILTIN_NAMES) | set(external_names)
    stray = sorted(set(cfg.params) - known)
    if stray:
        raise StrategyConfigError(f"params given for unknown strategy name(s): {', '.join(stray)}")

    members: list[BoundStrategy] = []
    weights: dict[str, float] = {}
    seen: set[str] = set()
    for name in cfg.enabled:
        if name in seen or name in external_names:
            continue
        seen.add(name)
        entry = BUILTINS[name]
        members.append(entry.bind(entry.params(cfg.params.get(name))))
        weights[name] = 1.0
    # Parameters of disabled built-ins are still checked, so that a typo is found before enabling.
    for name, data in cfg.params.items():
        if name in BUILTINS and name not in seen:
            BUILTINS[name].params(data)
    for spec in cfg.external:
        members.append(load_external(spec, cfg.params.get(spec.name)))
        weights[spec.name] = spec.weight
    if not members:
        raise StrategyConfigError("enabled lists no strategy and no external strategy is configured")

    active = {m.name for m in members}
    for name, weight in cfg.weights.items():
        if name not in active:
            why = "is not enabled" if name in known else "is not a known strategy"
            raise StrategyConfigError(f"weights.{name}: {name!r} {why}")
        weights[name] = weight
    confluence = Confluence(
        weights,
        known=active,
        entry_threshold=cfg.entry_threshold,
        exit_threshold=cfg.exit_threshold,
        higher_timeframe=HigherTimeframeTrend(cfg.higher_timeframe_ema) if cfg.higher_timeframe else None,
    )
    try:
        runner = StrategyRunner(cfg.budget_s)
    except ValueError as exc:
        raise StrategyConfigError(f"budget_s: {exc}") from exc
    return StrategySet(members, confluence, runner)


def _as_config(config: object) -> StrategyConfig:
    if isinstance(config, StrategyConfig):
        return config
    if isinstance(config, Mapping):
        return StrategyConfig.from_mapping(config)
    dump = getattr(config, "model_dump", None)
    if callable(dump):
        data = dump()
        if isinstance(data, Mapping):
            return StrategyConfig.from_mapping(data)
    raise TypeError(f"cannot read a strategy configuration from {type(config).__name__}")
