"""Configuration errors found at start-up exit 2 with one line naming the key, before the database
is opened, with no traceback (they used to exit 1 with a traceback, after the database was opened)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings.vault import RawKey, Vault
from tests.core.app.test_service import env_for, tradectl

PASSPHRASE = "correct horse battery staple"


def vault_with(tmp_path: Path, mode: int = 0o600) -> tuple[Path, RawKey]:
    key = RawKey.generate()
    path = tmp_path / "vault.bin"
    Vault.create(path, key, values={"telegram.token": "123456:" + "A" * 35})
    os.chmod(path, mode)
    return path, key


def assert_config_error(tmp_path: Path, res: object, *named: str) -> None:
    stdout, stderr, code = res.stdout, res.stderr, res.returncode  # type: ignore[attr-defined]
    assert code == 2, stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), stderr[-3000:]
    for text in named:
        assert text in lines[0], lines[0]
    assert not (tmp_path / "svc.db").exists(), "the database was opened before the configuration was checked"


CASES = {
    "telegram without token": ({"TRADECTL_TELEGRAM__ENABLED": "true"}, ["telegram.enabled", "telegram.token"]),
    "discord without token": ({"TRADECTL_DISCORD__ENABLED": "true"}, ["discord.enabled", "discord.token"]),
    "slack socket without app token": ({"TRADECTL_SLACK__ENABLED": "true", "TRADECTL_SLACK__BOT_TOKEN": "xoxb-1-2-3"},
                                       ["slack.enabled", "slack.app_token"]),
    "both vault credentials": ({"TRADECTL_VAULT_PASSPHRASE": PASSPHRASE, "TRADECTL_VAULT_KEY": "0" * 64},
                               ["TRADECTL_VAULT_KEY", "TRADECTL_VAULT_PASSPHRASE"]),
    "unreadable secret file": ({"TRADECTL_TELEGRAM__TOKEN_FILE": "/nonexistent/token"},
                               ["TRADECTL_TELEGRAM__TOKEN_FILE"]),
    "log file that cannot be written": ({"TRADECTL_LOGGING__FILE": "/proc/no/such/dir/tradectl.log"},
                                        ["logging.file", "TRADECTL_LOGGING__FILE"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_startup_configuration_error_exits_2_naming_the_key(tmp_path: Path, case: str) -> None:
    extra, named = CASES[case]
    res = tradectl(["run"], env_for(tmp_path, **extra), tmp_path, timeout=30)
    assert_config_error(tmp_path, res, *named)


@pytest.mark.parametrize("url", ["mysql://tradectl:hunter2-pass@db/tradectl", "not a url"])
def test_unsupported_database_url_exits_2_without_repeating_it(tmp_path: Path, url: str) -> None:
    res = tradectl(["run"], env_for(tmp_path, DATABASE_URL=url), tmp_path, timeout=30)
    assert_config_error(tmp_path, res, "database.url", "DATABASE_URL")
    assert "hunter2-pass" not in res.stderr


def test_vault_readable_by_others_exits_2_naming_vault_path(tmp_path: Path) -> None:
    path, key = vault_with(tmp_path, mode=0o644)
    env = env_for(tmp_path, TRADECTL_VAULT__PATH=str(path), TRADECTL_VAULT_KEY=key.encode())
    assert_config_error(tmp_path, tradectl(["run"], env, tmp_path, timeout=30), "vault.path", "chmod 600")


def test_missing_vault_and_wrong_key_exit_2(tmp_path: Path) -> None:
    env = env_for(tmp_path, TRADECTL_VAULT__PATH=str(tmp_path / "none.bin"),
                  TRADECTL_VAULT_KEY=RawKey.generate().encode())
    assert_config_error(tmp_path, tradectl(["run"], env, tmp_path, timeout=30), "vault.path", "no vault")
    path, _ = vault_with(tmp_path)
    env = env_for(tmp_path, TRADECTL_VAULT__PATH=str(path), TRADECTL_VAULT_KEY=RawKey.generate().encode())
    assert_config_error(tmp_path, tradectl(["run"], env, tmp_path, timeout=30), "TRADECTL_VAULT_KEY", "wrong key")


def test_a_damaged_vault_is_a_failure_not_a_setting(tmp_path: Path) -> None:
    path, key = vault_with(tmp_path)
    data = bytearray(path.read_bytes())
    data[-40] ^= 1
    path.write_bytes(bytes(data))
    res = tradectl(["run"], env_for(tmp_path, TRADECTL_VAULT__PATH=str(path), TRADECTL_VAULT_KEY=key.encode()),
                   tmp_path, timeout=30)
    assert res.returncode == 1, res.stderr[-3000:]
    assert res.stderr.startswith("secrets: ") and "Traceback" not in res.stderr
    assert not (tmp_path / "svc.db").exists()


def test_config_check_runs_the_same_checks(tmp_path: Path) -> None:
    res = tradectl(["config", "check"], env_for(tmp_path, TRADECTL_TELEGRAM__ENABLED="true"), tmp_path)
    assert_config_error(tmp_path, res, "telegram.token")


def test_a_token_from_the_vault_satisfies_the_check(tmp_path: Path) -> None:
    """The check runs on the resolved settings: a token kept in the vault counts."""
    path, key = vault_with(tmp_path)
    env = env_for(tmp_path, TRADECTL_VAULT__PATH=str(path), TRADECTL_VAULT_KEY=key.encode(),
                  TRADECTL_TELEGRAM__ENABLED="true")
    res = tradectl(["config", "check"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "telegram.token = \"vault" in res.stdout


def test_replay_and_timeframe_settings_are_checked_before_start(tmp_path: Path) -> None:
    """Found only when the trading core started (after the database, as a traceback), they stopped
    the leader's work, not the service."""
    res = tradectl(["run"], env_for(tmp_path, TRADECTL_REPLAY__CSV=str(tmp_path / "missing.csv")), tmp_path, timeout=30)
    assert_config_error(tmp_path, res, "replay.csv", "missing.csv")
    res = tradectl(["run"], env_for(tmp_path, TRADECTL_STRATEGIES__HIGHER_TIMEFRAME="7m"), tmp_path, timeout=30)
    assert_config_error(tmp_path, res, "strategies.higher_timeframe", "'7m'")
    res = tradectl(["run"], env_for(tmp_path, TRADECTL_STRATEGIES__HIGHER_TIMEFRAME="30m"), tmp_path, timeout=30)
    assert_config_error(tmp_path, res, "strategies.higher_timeframe", "'30m'", "trading.timeframe")
    res = tradectl(["run"], env_for(tmp_path, TRADECTL_TRADING__TIMEFRAME="4h"), tmp_path, timeout=30)
    assert_config_error(tmp_path, res, "trading.timeframe", "replay.csv")
