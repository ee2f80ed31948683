"""The tuned overlay: written beside the user's config, merged over it, limited to strategy params."""

from __future__ import annotations

import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from core.backtest.tune import parse_value
from core.settings.config import Settings
from core.settings.overlay import (
    OverlayError,
    apply_overlay,
    overlay_path,
    read_overlay,
    render_overlay,
    write_overlay,
)
from persistence.files import atomic_write, locked

USER = {"strategies": {"enabled": ["sma_cross", "trend"], "params": {"sma_cross": {"fast": 10, "slow": 30},
                                                                    "trend": {"fast": 12}}}}


def test_overlay_merges_over_the_config_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "tuned.toml"
    write_overlay(path, "sma_cross", {"slow": 50}, ["grid: sma_cross.slow=40,50"])
    origin: dict[tuple[str, ...], str] = {}
    merged = apply_overlay(USER, {"TRADECTL_BACKTEST__OVERLAY": str(path)}, origin)
    settings = Settings(**merged)
    assert settings.strategies.params["sma_cross"] == {"fast": 10, "slow": 50}
    assert settings.strategies.params["trend"] == {"fast": 12}
    assert settings.strategies.enabled == ("sma_cross", "trend")
    assert origin[("strategies", "params", "sma_cross", "slow")].startswith(str(path))
    assert USER["strategies"]["params"]["sma_cross"]["slow"] == 30  # the input is not modified


def test_writing_one_strategy_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "tuned.toml"
    write_overlay(path, "sma_cross", {"fast": 5, "slow": 20}, [])
    write_overlay(path, "trend", {"fast": 8, "use_adx": True}, [])
    write_overlay(path, "sma_cross", {"fast": 7, "slow": 21}, [])
    assert read_overlay(path) == {"sma_cross": {"fast": 7, "slow": 21}, "trend": {"fast": 8, "use_adx": True}}
    assert tomllib.loads(path.read_text())["strategies"]["params"]["trend"]["use_adx"] is True


def test_missing_overlay_changes_nothing(tmp_path: Path) -> None:
    assert apply_overlay(USER, {"TRADECTL_BACKTEST__OVERLAY": str(tmp_path / "none.toml")}, {}) is USER


@pytest.mark.parametrize("text", ['[trading]\nmode = "live"\n', '[strategies]\nenabled = ["trend"]\n',
                                  '[strategies.params.sma_cross]\nfast = [1, 2]\n', "not toml ["])
def test_overlay_holds_strategy_params_only(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tuned.toml"
    path.write_text(text)
    with pytest.raises(OverlayError, match=str(path)):
        read_overlay(path)


def test_overlay_location() -> None:
    assert overlay_path({}, {}) == Path("data/tuned.toml")
    assert overlay_path({"backtest": {"overlay": "x/t.toml"}}, {}) == Path("x/t.toml")
    from_env = overlay_path({"backtest": {"overlay": "x/t.toml"}}, {"TRADECTL_BACKTEST__OVERLAY": "e.toml"})
    assert from_env == Path("e.toml")


def test_parameter_values_from_text() -> None:
    assert [parse_value(v) for v in ("3", "0.5", "true", "ema")] == [3, 0.5, True, "ema"]


def test_reading_the_overlay_is_light_enough_for_settings_loading() -> None:
    """core.settings.config.load_settings merges the overlay: that import must not drag in the engine or TA-Lib."""
    code = ("import sys, core.settings.config, core.settings.overlay; "
            "heavy = [m for m in ('talib', 'numpy', 'core.trading.engine', 'sqlmodel') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_two_runs_writing_the_overlay_at_once_keep_each_others_strategy(tmp_path: Path) -> None:
    """A tuning run of one strategy read the overlay, another run wrote its strategy meanwhile, then the
    first wrote what it had read plus its own: the other strategy's entry was gone."""
    path = tmp_path / "tuned.toml"
    write_overlay(path, "sma_cross", {"fast": 5}, [])
    with locked(path):  # the first run, between its read and its write
        seen = read_overlay(path)
        other = threading.Thread(target=write_overlay, args=(path, "momentum", {"rsi_period": 9}, []))
        other.start()
        other.join(0.3)
        assert other.is_alive()  # the second run waits for the first ...
        seen["mean_reversion"] = {"bb_period": 30}
        atomic_write(path, render_overlay(seen, []).encode())
    other.join(5)
    assert set(read_overlay(path)) == {"sma_cross", "mean_reversion", "momentum"}  # ... and keeps what it wrote
