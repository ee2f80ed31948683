"""The tuned-parameter overlay: a small TOML file that ``tradectl tune`` writes and start-up merges.

The user's own configuration file is never written. Tuning results go to a separate file
(``backtest.overlay``, default ``data/tuned.toml``) that holds only strategy parameters::

    # written by `tradectl tune` ...
    [strategies.params.sma_cross]
    fast = 10
    slow = 50

Precedence at start-up: defaults < the config file < **the overlay** < ``.env`` < environment
variables; so a value set in the environment still wins, and deleting the overlay returns to the
user's own settings. :func:`apply_overlay` is the merge, written to be called from
:func:`core.config.load_settings` right after the config file is read.

Only ``[strategies.params.<name>]`` tables are accepted: an overlay can tune a strategy, never
switch the venue, the mode or the risk limits behind the user's back.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.backtest.files import atomic_write

DEFAULT_OVERLAY = Path("data/tuned.toml")
ENV_VAR = "TRADECTL_BACKTEST__OVERLAY"
Scalar = int | float | bool | str


class OverlayError(ValueError):
    """The overlay file is unreadable or holds something other than strategy parameters."""


def overlay_path(config_data: Mapping[str, Any], env: Mapping[str, str]) -> Path:
    """Where the overlay lives: the environment, else the config file's ``backtest.overlay``, else the default."""
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    section = config_data.get("backtest")
    if isinstance(section, Mapping) and section.get("overlay"):
        return Path(str(section["overlay"]))
    return DEFAULT_OVERLAY


def read_overlay(path: Path) -> dict[str, dict[str, Scalar]]:
    """``{strategy: {param: value}}`` from the overlay; empty when the file does not exist."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OverlayError(f"tuned overlay {path}: {exc}") from exc
    extra = sorted(set(data) - {"strategies"})
    strategies = data.get("strategies", {})
    extra += [f"strategies.{k}" for k in sorted(set(strategies) - {"params"})]
    if extra:
        raise OverlayError(f"tuned overlay {path} may only hold [strategies.params.<name>] tables; found {', '.join(extra)}")
    params = strategies.get("params", {})
    out: dict[str, dict[str, Scalar]] = {}
    for name, table in params.items():
        if not isinstance(table, dict) or not all(isinstance(v, (int, float, bool, str)) for v in table.values()):
            raise OverlayError(f"tuned overlay {path}: strategies.params.{name} must be a table of plain values")
        out[name] = dict(table)
    return out


def apply_overlay(data: dict[str, Any], env: Mapping[str, str], origin: dict[tuple[str, ...], str]) -> dict[str, Any]:
    """``data`` (the config file's contents) with the overlay's parameters merged over it.

    ``origin`` gets each overlay key's source so that a validation error names the overlay file.
    Raises :class:`OverlayError` for a malformed overlay.
    """
    path = overlay_path(data, env)
    tuned = read_overlay(path)
    if not tuned:
        return data
    merged = dict(data)
    strategies = dict(merged.get("strategies") or {})
    params = {k: dict(v) for k, v in (strategies.get("params") or {}).items()}
    for name, values in tuned.items():
        params[name] = {**params.get(name, {}), **values}
        for key in values:
            origin[("strategies", "params", name, key)] = f"{path} key strategies.params.{name}.{key}"
    strategies["params"] = params
    merged["strategies"] = strategies
    return merged


def _toml_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OverlayError(f"cannot write a non-finite number ({value}) to the overlay")
        return repr(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def render_overlay(params: Mapping[str, Mapping[str, Scalar]], header: list[str]) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    for name in sorted(params):
        lines += ["", f"[strategies.params.{_toml_key(name)}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in params[name].items()]
    return "\n".join(lines) + "\n"


def write_overlay(path: Path, strategy: str, values: Mapping[str, Scalar], header: list[str]) -> None:
    """Set one strategy's tuned parameters in the overlay, keeping the other strategies' entries.

    The file is replaced atomically; it is machine-written, so nothing a person wrote is lost.
    """
    existing = read_overlay(path)
    existing[strategy] = dict(values)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = render_overlay(existing, [f"Tuned strategy parameters, written by `tradectl tune` on {stamp}.",
                                     "Merged over the config file at start-up (environment variables still win).",
                                     "Delete this file to go back to your own settings. Do not edit by hand:",
                                     "the next tuning run replaces it.", "", *header])
    atomic_write(path, text.encode("utf-8"))
