"""Loading strategy modules from outside the package, pinned by SHA-256.

An external strategy is a single Python file. It is imported only when the configuration lists it
with the SHA-256 (hex) of its exact content. The file is read once; those bytes are hashed, and
those same bytes are compiled and executed, so the file cannot be swapped between the check and the
import. The hash pins *which* code runs; it is not a sandbox: the module runs with the service's
full permissions, so review a file before pinning its hash.

Module contract
---------------
The file must define:

``NAME: str``
    The strategy's name; must equal the name it is configured under and must not be a built-in's.

``def evaluate(candles: Candles, params: dict) -> Signal``
    A pure function of the window (see :class:`strategies.base.Candles`) returning a signal about
    its last candle, for ``candles.pair``. It receives a fresh dict of parameters on every call.

and may define:

``PARAMS: dict[str, int | float | bool | str]``
    Accepted parameters and their defaults. Configured parameters must be keys of it (a module
    without ``PARAMS`` accepts none) and of the same type as the default (an int is fine for a
    float). The dict passed to ``evaluate`` is the defaults updated with the configured values.

Errors raised by ``evaluate`` are contained by :mod:`strategies.runner`; errors while importing
raise :class:`StrategyConfigError`, because a module that cannot load is a configuration problem.
"""

from __future__ import annotations

import hashlib
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from strategies.base import Candles, Signal
from strategies.builtins import BUILTINS
from strategies.errors import StrategyConfigError
from strategies.spec import BoundStrategy

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PARAM_TYPES = (bool, int, float, str)


@dataclass(frozen=True, slots=True)
class ExternalSpec:
    """One configured external strategy file. ``weight`` is its default confluence weight."""

    name: str
    path: Path
    sha256: str | None
    weight: float = 1.0


def file_sha256(path: Path | str) -> str:
    """The hex SHA-256 of a file's content: the value to put in the configuration."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_external(spec: ExternalSpec, params: Mapping[str, object] | None = None) -> BoundStrategy:
    """Verify, import and bind one external strategy; every problem raises naming the module."""
    label = f"external strategy {spec.name!r} ({spec.path})"
    try:
        content = Path(spec.path).read_bytes()
    except OSError as exc:
        raise StrategyConfigError(f"{label}: cannot read the file: {exc}") from exc
    actual = hashlib.sha256(content).hexdigest()
    expected = (spec.sha256 or "").strip().lower()
    if expected != actual:
        given = expected or "(none configured)"
        hint = "" if not expected or _HEX64.match(expected) else " (a sha256 must be 64 hex digits)"
        raise StrategyConfigError(
            f"{label}: SHA-256 mismatch, refusing to import: configured {given}{hint}, file has {actual}"
        )
    module = _execute(label, spec.name, actual, content, Path(spec.path))
    evaluate, defaults = _check_contract(label, spec.name, module)
    merged = _merge_params(label, defaults, params or {})

    def run(candles: Candles) -> Signal:
        result: Signal = evaluate(candles, dict(merged))
        return result

    return BoundStrategy(
        name=spec.name, evaluate=run, signals=None, warmup=None, params=dict(merged), origin=str(spec.path)
    )


def _execute(label: str, name: str, digest: str, content: bytes, path: Path) -> types.ModuleType:
    module_name = f"tradectl_external_{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{digest[:12]}"
    try:
        code = compile(content, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise StrategyConfigError(f"{label}: does not compile: {exc}") from exc
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    # Registered while executing so that dataclasses and pickling inside the module can find it.
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise StrategyConfigError(f"{label}: import failed: {type(exc).__name__}: {exc}") from exc
    return module


def _check_contract(
    label: str, name: str, module: types.ModuleType
) -> tuple[Callable[[Candles, dict[str, object]], Signal], dict[str, object]]:
    declared = getattr(module, "NAME", None)
    if not isinstance(declared, str):
        raise StrategyConfigError(f"{label}: the module must define NAME as a string")
    if declared != name:
        raise StrategyConfigError(f"{label}: the module's NAME is {declared!r}, configured as {name!r}")
    if name in BUILTINS:
        raise StrategyConfigError(f"{label}: {name!r} is the name of a built-in strategy")
    evaluate = getattr(module, "evaluate", None)
    if not callable(evaluate):
        raise StrategyConfigError(f"{label}: the module must define evaluate(candles, params)")
    defaults = getattr(module, "PARAMS", {})
    if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
        raise StrategyConfigError(f"{label}: PARAMS must be a dict with string keys")
    return evaluate, dict(defaults)


def _merge_params(label: str, defaults: dict[str, object], given: Mapping[str, object]) -> dict[str, object]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise StrategyConfigError(f"{label}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
    merged = dict(defaults)
    for key, value in given.items():
        default = defaults[key]
        same = type(value) is type(default) or (type(default) is float and type(value) is int)
        if not same or not isinstance(value, _PARAM_TYPES):
            raise StrategyConfigError(
                f"{label}: parameter {key} must be {type(default).__name__}, got {type(value).__name__} {value!r}"
            )
        merged[key] = float(value) if type(default) is float else value
    return merged
