"""Building a strategy set from configuration, including SHA-256-pinned external modules."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strategies.base import Candles, Direction
from strategies.builtins import BUILTIN_NAMES
from strategies.config import StrategyConfig
from strategies.errors import StrategyConfigError
from strategies.external import file_sha256
from strategies.registry import build_params, builtin, load_strategies
from strategies.trend import TrendParams
from tests.strategies.candle_data import window

ROOT = Path(__file__).resolve().parents[2]

EXTERNAL = textwrap.dedent(
    """
    from pathlib import Path
    from strategies.base import Candles, Direction, Signal

    NAME = "always_buy"
    PARAMS = {"strength": 0.5}

    # A visible side effect of importing, so a test can tell whether the file was executed.
    Path(__file__).with_suffix(".ran").write_text("imported")

    def evaluate(candles: Candles, params: dict) -> Signal:
        return Signal(candles.pair, Direction.BUY, params["strength"], "always", NAME)
    """
)


def write_module(tmp_path: Path, text: str = EXTERNAL, name: str = "always_buy.py") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_text(text)
    return path, hashlib.sha256(text.encode()).hexdigest()


def external(path: Path, sha: str | None, **extra: object) -> dict[str, object]:
    return {"enabled": [], "external": [{"name": "always_buy", "path": str(path), "sha256": sha, **extra}]}


def test_defaults_load_the_five_trading_builtins(btc: Candles) -> None:
    scanner = load_strategies({})
    assert scanner.names == ("trend", "mean_reversion", "momentum", "breakout", "candles")
    sig = scanner.evaluate("BTC/USD", window(btc, 9000, 9500), None)
    assert sig.strategy == "confluence" and sig.direction in set(Direction)


def test_builtins_by_name_and_params() -> None:
    assert set(BUILTIN_NAMES) == {"trend", "mean_reversion", "momentum", "breakout", "candles", "sma_cross"}
    assert build_params("trend", {"fast": 5}) == TrendParams(fast=5)
    with pytest.raises(StrategyConfigError, match="'trand'"):
        builtin("trand")


def test_params_reach_the_strategy() -> None:
    scanner = load_strategies({"enabled": ["trend", "sma_cross"], "params": {"sma_cross": {"fast": 5, "slow": 8}}})
    assert scanner.member("sma_cross").params == build_params("sma_cross", {"fast": 5, "slow": 8})
    assert scanner.member("sma_cross").warmup == 9


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"enabled": ["trend", "mean_revrsion"]}, "mean_revrsion"),
        ({"params": {"trend": {"fats": 3}}}, "fats"),
        ({"params": {"trend": {"fast": "3"}}}, r"trend\.fast"),
        ({"params": {"sma_cross": {"slow": 2}}}, r"sma_cross\.slow"),  # checked even when disabled
        ({"params": {"nosuch": {}}}, "nosuch"),
        ({"weights": {"sma_cross": 1.0}}, r"weights\.sma_cross.*not enabled"),
        ({"weights": {"trend": -1.0}}, r"weights\.trend"),
        ({"weights": {"nosuch": 1.0}}, r"weights\.nosuch"),
        ({"entry_threshold": 0}, "entry_threshold"),
        ({"budget_s": -1}, "budget_s"),
        ({"enabled": []}, "enabled"),
        ({"enabld": ["trend"]}, "enabld"),
    ],
)
def test_bad_configuration_is_refused_naming_it(config: dict[str, object], named: str) -> None:
    with pytest.raises(StrategyConfigError, match=named):
        load_strategies(config)


def test_service_settings_section_loads_as_is() -> None:
    from core.settings.settings_models import StrategySettings

    settings = StrategySettings.model_validate({"enabled": ("trend", "momentum"), "weights": {"trend": 2.0},
                                                "params": {"momentum": {"mode": "histogram"}},
                                                "higher_timeframe": "4h"})
    scanner = load_strategies(settings)
    assert scanner.names == ("trend", "momentum")
    assert dict(scanner.confluence.weights) == {"trend": 2.0, "momentum": 1.0}
    assert scanner.confluence.higher_timeframe is not None


def test_pinned_external_module_loads_and_runs(tmp_path: Path, btc: Candles) -> None:
    path, sha = write_module(tmp_path)
    assert file_sha256(path) == sha
    scanner = load_strategies({**external(path, sha.upper()), "params": {"always_buy": {"strength": 1}}})
    assert scanner.names == ("always_buy",)
    result = scanner.scan(window(btc, 0, 10))
    assert result.results[0].ok and result.results[0].signal.strength == 1.0
    assert result.signal.direction == Direction.BUY
    assert scanner.member("always_buy").origin == str(path)


def test_hash_mismatch_refuses_and_never_executes(tmp_path: Path) -> None:
    path, sha = write_module(tmp_path)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(StrategyConfigError) as err:
        load_strategies(external(path, wrong))
    message = str(err.value)
    assert "always_buy" in message and wrong in message and sha in message
    assert not (tmp_path / "always_buy.ran").exists()
    load_strategies(external(path, sha))
    assert (tmp_path / "always_buy.ran").exists()


def test_missing_hash_refuses_and_shows_the_files_hash(tmp_path: Path) -> None:
    path, sha = write_module(tmp_path)
    with pytest.raises(StrategyConfigError, match=rf"always_buy.*none configured.*{sha}"):
        load_strategies(external(path, None))


def test_a_file_edited_after_pinning_is_refused(tmp_path: Path) -> None:
    path, sha = write_module(tmp_path)
    path.write_text(EXTERNAL.replace("0.5", "0.9"))
    with pytest.raises(StrategyConfigError, match=sha):
        load_strategies(external(path, sha))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (EXTERNAL.replace('NAME = "always_buy"', 'NAME = "other"'), "'other'"),
        (EXTERNAL.replace('NAME = "always_buy"', "NAME = 3"), "NAME"),
        (EXTERNAL.replace("def evaluate", "def judge"), "evaluate"),
        (EXTERNAL + "\nraise RuntimeError('no config file')\n", "import failed.*no config file"),
        (EXTERNAL + "\ndef broken(:\n", "does not compile"),
    ],
)
def test_module_contract_is_checked(tmp_path: Path, text: str, named: str) -> None:
    path, sha = write_module(tmp_path, text)
    with pytest.raises(StrategyConfigError, match=named):
        load_strategies(external(path, sha))


def test_external_params_must_be_declared_and_typed(tmp_path: Path) -> None:
    path, sha = write_module(tmp_path)
    with pytest.raises(StrategyConfigError, match="streng"):
        load_strategies({**external(path, sha), "params": {"always_buy": {"streng": 1.0}}})
    with pytest.raises(StrategyConfigError, match="strength must be float"):
        load_strategies({**external(path, sha), "params": {"always_buy": {"strength": "high"}}})


def test_external_cannot_shadow_a_builtin_and_weight_applies(tmp_path: Path) -> None:
    text = EXTERNAL.replace('"always_buy"', '"trend"')
    path, sha = write_module(tmp_path, text, "trend.py")
    with pytest.raises(StrategyConfigError, match="built-in"):
        load_strategies({"enabled": [], "external": [{"name": "trend", "path": str(path), "sha256": sha}]})
    path, sha = write_module(tmp_path)
    scanner = load_strategies({"enabled": ["trend"], **{k: v for k, v in external(path, sha, weight=3.0).items()
                                                        if k != "enabled"}})
    assert dict(scanner.confluence.weights) == {"trend": 1.0, "always_buy": 3.0}


def test_unreadable_external_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StrategyConfigError, match=r"always_buy.*cannot read"):
        load_strategies(external(tmp_path / "absent.py", "0" * 64))


def test_config_value_object_is_accepted() -> None:
    scanner = load_strategies(StrategyConfig(enabled=("sma_cross",), entry_threshold=0.5))
    assert scanner.names == ("sma_cross",) and scanner.confluence.entry_threshold == 0.5


def test_package_exports_the_public_api() -> None:
    # A fresh interpreter from the project root, where ``strategies`` is the real package.
    code = (
        "import strategies as s; "
        "assert all(hasattr(s, n) for n in s.__all__); "
        "print(len(s.__all__), s.load_strategies({}).names)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "trend" in out.stdout
