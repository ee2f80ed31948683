"""Settings: every unknown key or variable is an error that names it; secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.app.cli import app
from core.settings.config import ConfigError, load_settings


def test_defaults_are_paper_on_embedded_sqlite() -> None:
    s = load_settings(env={}, dotenv_path=None)
    assert s.trading.mode == "paper"
    assert s.trading.venue == "paper"
    assert s.database.url.startswith("sqlite")


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="TRADECTL_NOT_A_SETTING"):
        load_settings(env={"TRADECTL_NOT_A_SETTING": "1"}, dotenv_path=None)


def test_nested_environment_override_applies() -> None:
    s = load_settings(env={"TRADECTL_RISK__MAX_OPEN_POSITIONS": "7", "DATABASE_URL": "postgresql://u@h/db"},
                      dotenv_path=None)
    assert s.risk.max_open_positions == 7
    assert s.database.url == "postgresql://u@h/db"


def test_typo_in_config_file_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "tradectl.toml"
    cfg.write_text("[risk]\nmax_open_positon = 3\n")
    with pytest.raises(ConfigError, match=r"risk\.max_open_positon.*tradectl\.toml"):
        load_settings(cfg, env={}, dotenv_path=None)


def test_wrong_type_names_key_and_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_open_positions.*TRADECTL_RISK__MAX_OPEN_POSITIONS"):
        load_settings(env={"TRADECTL_RISK__MAX_OPEN_POSITIONS": "many"}, dotenv_path=None)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nTRADECTL_RISK__MAX_OPEN_POSITIONS=4\nexport TRADECTL_SERVICE__GROUP='blue'\n")
    s = load_settings(env={"TRADECTL_SERVICE__GROUP": "green"}, dotenv_path=dotenv)
    assert s.risk.max_open_positions == 4
    assert s.service.group == "green"
    dotenv.write_text("TRADECTL_TYPO=1\n")
    with pytest.raises(ConfigError, match="TRADECTL_TYPO"):
        load_settings(env={}, dotenv_path=dotenv)


def test_live_needs_an_explicit_switch() -> None:
    with pytest.raises(ConfigError, match=r"trading\.mode = 'live'"):
        load_settings(env={"TRADECTL_TRADING__VENUE": "kraken"}, dotenv_path=None)


def test_bad_pair_and_timezone_are_refused() -> None:
    with pytest.raises(ConfigError, match="pair 'btcusd'"):
        load_settings(env={"TRADECTL_TRADING__PAIRS": '["btcusd"]'}, dotenv_path=None)
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_settings(env={"TRADECTL_SERVICE__TIMEZONE": "Mars/Olympus"}, dotenv_path=None)


def test_config_check_exit_codes_and_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["config", "check"], env={"TRADECTL_NOT_A_SETTING": "1"})
    assert bad.exit_code == 2
    assert "TRADECTL_NOT_A_SETTING" in bad.output
    secret = "kraken-secret-value-123"
    ok = runner.invoke(app, ["config", "check"], env={"TRADECTL_KRAKEN__API_SECRET": secret})
    assert ok.exit_code == 0, ok.output
    assert "[trading]" in ok.output
    assert secret not in ok.output
    assert "api_secret" in ok.output


def test_every_setting_is_documented() -> None:
    """.env.example and docs/configuration.md list every setting, generated from the models."""
    from core.app.config_docs import env_example, markdown

    root = Path(__file__).resolve().parents[3]
    assert (root / ".env.example").read_text() == env_example(), "run: tradectl config docs --format env > .env.example"
    reference = (root / "docs" / "configuration.md").read_text()
    assert markdown() in reference, "regenerate the table in docs/configuration.md"


def test_a_setting_named_file_is_read_from_the_environment(tmp_path: Path) -> None:
    """``TRADECTL_LOGGING__FILE`` is the setting logging.file; only a secret's ``_FILE`` form is left to
    core.settings.secrets (it used to drop every variable ending in _FILE, silently)."""
    s = load_settings(env={"TRADECTL_LOGGING__FILE": str(tmp_path / "t.log"),
                           "TRADECTL_KRAKEN__API_SECRET_FILE": str(tmp_path / "secret"),
                           "TRADECTL_VAULT_KEY_FILE": str(tmp_path / "key")}, dotenv_path=None)
    assert s.logging.file == tmp_path / "t.log"
    assert s.kraken.api_secret is None
    with pytest.raises(ConfigError, match="TRADECTL_RISK__TYPO_FILE"):
        load_settings(env={"TRADECTL_RISK__TYPO_FILE": "x"}, dotenv_path=None)
