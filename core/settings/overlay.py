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
:func:`core.settings.config.load_settings` right after the config file is read.

Only ``[strategies.params.<name>]`` tables are accepted: an overlay can tune a strategy, never
switch the venue, the mode or the risk limits behind the user's back.

The traded pairs changed from chat (``/pairs add`` / ``/pairs remove``) are a second overlay of the
same kind, ``<service.data_dir>/pairs.toml``, written by the engine and merged the same way (over the
config file, under the environment). It holds ``trading.pairs`` and nothing else that reaches the
settings; ``[pairs] closing`` lists the pairs removed with ``keep`` whose position is still being
managed (read by the engine, not a setting). It lives beside the data it describes, so replicas on
other hosts do not share it: each keeps the list it was started with until it is changed there.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchanges.errors import TradectlError
from persistence.files import atomic_write, locked

DEFAULT_OVERLAY = Path("data/tuned.toml")
ENV_VAR = "TRADECTL_BACKTEST__OVERLAY"
Scalar = int | float | bool | str


class OverlayError(TradectlError, ValueError):
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
        raise OverlayError(f"tuned overlay {path} may only hold [strategies.params.<name>] tables; "
                           f"found {', '.join(extra)}")
    params = strategies.get("params", {})
    out: dict[str, dict[str, Scalar]] = {}
    for name, table in params.items():
        if not isinstance(table, dict) or not all(isinstance(v, (int, float, bool, str)) for v in table.values()):
            raise OverlayError(f"tuned overlay {path}: strategies.params.{name} must be a table of plain values")
        out[name] = dict(table)
    return out


def apply_overlay(data: dict[str, Any], env: Mapping[str, str], origin: dict[tuple[str, ...], str]) -> dict[str, Any]:
    """``data`` (the config file's contents) with the overlay's parameters (and the pairs overlay's
    ``trading.pairs``) merged over it.

    ``origin`` gets each overlay key's source so that a validation error names the overlay file.
    Raises :class:`OverlayError` for a malformed overlay.
    """
    data = apply_pairs_overlay(data, env, origin)
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

    The file is replaced atomically; it is machine-written, so nothing a person wrote is lost. Runs tuning
    other strategies at the same time write it in turn, each keeping what the other wrote.
    """
    with locked(path):
        existing = read_overlay(path)
        existing[strategy] = dict(values)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = render_overlay(existing, [f"Tuned strategy parameters, written by `tradectl tune` on {stamp}.",
                                         "Merged over the config file at start-up (environment variables still win).",
                                         "Delete this file to go back to your own settings. Do not edit by hand:",
                                         "the next tuning run replaces it.", "", *header])
        atomic_write(path, text.encode("utf-8"))


# -- the traded pairs changed from chat ---------------------------------------------------------

PAIRS_FILE = "pairs.toml"
DATA_DIR_ENV = "TRADECTL_SERVICE__DATA_DIR"


@dataclass(frozen=True, slots=True)
class PairsOverlay:
    """``pairs``: every pair traded (those winding down included); ``closing``: removed with ``keep``,
    managed until their position is closed, no new entries."""

    pairs: tuple[str, ...]
    closing: tuple[str, ...] = ()


def pairs_overlay_path(config_data: Mapping[str, Any], env: Mapping[str, str]) -> Path:
    """``<service.data_dir>/pairs.toml``: the data directory from the environment, else the config file's."""
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]) / PAIRS_FILE
    section = config_data.get("service")
    if isinstance(section, Mapping) and section.get("data_dir"):
        return Path(str(section["data_dir"])) / PAIRS_FILE
    return Path("data") / PAIRS_FILE


def read_pairs_overlay(path: Path) -> PairsOverlay | None:
    """The pairs overlay, or None when there is none. Raises :class:`OverlayError` when malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OverlayError(f"pairs overlay {path}: {exc}") from exc
    trading, extra = data.get("trading"), sorted(set(data) - {"trading", "pairs"})
    if not isinstance(trading, dict) or set(trading) != {"pairs"}:
        extra.append("trading (must hold exactly: pairs)")
    section = data.get("pairs", {})
    if not isinstance(section, dict) or set(section) - {"closing"}:
        extra.append("pairs (may hold only: closing)")
    if extra:
        raise OverlayError(f"pairs overlay {path} may only hold trading.pairs and pairs.closing; found "
                           f"{', '.join(extra)}")
    pairs = trading["pairs"] if isinstance(trading, dict) else None
    closing = section.get("closing", []) if isinstance(section, dict) else None
    lists: list[tuple[str, ...]] = []
    for key, value in (("trading.pairs", pairs), ("pairs.closing", closing)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OverlayError(f"pairs overlay {path}: {key} must be a list of pairs")
        lists.append(tuple(value))
    return PairsOverlay(lists[0], tuple(p for p in lists[1] if p in lists[0]))


def apply_pairs_overlay(data: dict[str, Any], env: Mapping[str, str],
                        origin: dict[tuple[str, ...], str]) -> dict[str, Any]:
    """``data`` with ``trading.pairs`` from the pairs overlay, when there is one (see the module docstring)."""
    path = pairs_overlay_path(data, env)
    found = read_pairs_overlay(path)
    if found is None:
        return data
    merged = dict(data)
    merged["trading"] = {**dict(merged.get("trading") or {}), "pairs": list(found.pairs)}
    origin[("trading", "pairs")] = f"{path} key trading.pairs (changed from chat with /pairs)"
    return merged


def write_pairs_overlay(path: Path, overlay: PairsOverlay, by: str) -> None:
    """Replace the pairs overlay atomically (machine-written: nothing a person wrote is lost)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Traded pairs, written by /pairs from chat ({by}) on {stamp}.",
             "# Merged over the config file at start-up (environment variables still win).",
             "# Delete this file to go back to trading.pairs of your own settings.", "",
             "[trading]", f"pairs = [{', '.join(json.dumps(p) for p in overlay.pairs)}]"]
    if overlay.closing:
        lines += ["", "[pairs]", f"closing = [{', '.join(json.dumps(p) for p in overlay.closing)}]"]
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
