"""docs/strategies.md stays true: its example file is the template, and every step it shows (hash, pin,
backtest, tune, enable) works on a copy of it."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.app.cli import app
from core.settings.config import load_settings
from strategies import load_strategies

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "strategies" / "examples" / "dip_buyer.py"
GUIDE = ROOT / "docs" / "strategies.md"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TRADECTL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_the_guide_shows_the_example_file_as_it_is() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert blocks and blocks[0] == EXAMPLE.read_text()


def test_strategy_hash_prints_the_lines_the_loader_checks(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "dip_buyer.py").write_bytes(EXAMPLE.read_bytes())
    run = runner.invoke(app, ["strategy", "hash", "mine/dip_buyer.py"])
    assert run.exit_code == 0, run.output
    pin = tomllib.loads(run.output)  # the comment line and the table parse as TOML as printed
    assert pin == {"strategies": {"external": [{"name": "dip_buyer", "path": "mine/dip_buyer.py",
                                                "sha256": pin["strategies"]["external"][0]["sha256"]}]}}
    (tmp_path / "tradectl.toml").write_text("[strategies]\nenabled = []\n\n" + run.output)
    strategies = load_strategies(load_settings(tmp_path / "tradectl.toml").strategies)
    assert strategies.names == ("dip_buyer",)
    (tmp_path / "mine" / "dip_buyer.py").write_text(EXAMPLE.read_text() + "\n# edited\n")
    with pytest.raises(Exception, match="SHA-256 mismatch"):
        load_strategies(load_settings(tmp_path / "tradectl.toml").strategies)


def test_strategy_hash_refuses_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["strategy", "hash", "nope.py"])
    assert missing.exit_code == 2 and "nope.py: no such file" in missing.output
    (tmp_path / "adir").mkdir()
    folder = runner.invoke(app, ["strategy", "hash", "adir"])
    assert folder.exit_code == 2 and "is a directory" in folder.output


@pytest.mark.slow
def test_backtest_tune_and_enable_the_example(tmp_path: Path) -> None:
    (tmp_path / "dip_buyer.py").write_bytes(EXAMPLE.read_bytes())
    pin = runner.invoke(app, ["strategy", "hash", "dip_buyer.py"]).output
    config = tmp_path / "tradectl.toml"
    config.write_text("[strategies]\nenabled = []\n\n" + pin)
    ran = runner.invoke(app, ["backtest", "--config", str(config), "--from", "2019-01-01", "--to", "2019-01-15",
                              "--cash", "10000", "--quiet"])
    assert ran.exit_code == 0, ran.output
    assert "mode: engine" in ran.output and re.search(r"trades\s+\d+ closed", ran.output)
    tuned = runner.invoke(app, ["tune", "--config", str(config), "--from", "2019-01-01", "--to", "2019-01-22",
                                "--cash", "10000", "--grid", "dip_buyer.period=10,20", "--grid",
                                "dip_buyer.dip_pct=2.0,4.0", "--metric", "return", "--min-trades", "1",
                                "--chunks", "1", "--quiet"])
    assert tuned.exit_code == 0, tuned.output
    assert "4 sets tried, 0 skipped" in tuned.output
    overlay = tomllib.loads((tmp_path / "data" / "tuned.toml").read_text())
    best = overlay["strategies"]["params"]["dip_buyer"]
    assert set(best) == {"period", "dip_pct"}
    settings = load_settings(config)  # enable: the next start loads it with the tuned values
    strategies = load_strategies(settings.strategies)
    assert strategies.names == ("dip_buyer",)
    assert {k: strategies.members[0].params[k] for k in best} == best
