"""The service run with secrets from the vault: the values never appear in its output."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from core.settings.vault import RawKey, Vault
from tests.core.app.test_service import TRADECTL, env_for, terminate, tradectl, wait_for


def test_secrets_from_the_vault_never_reach_the_logs(tmp_path: Path) -> None:
    secret = 'kr4ken-"secret"\\value-' + "x" * 20
    api_key = "K-" + "a1b2c3d4e5f6" * 3
    key = RawKey.generate()
    vault_path = tmp_path / "vault.bin"
    Vault.create(vault_path, key, values={"kraken.api_secret": secret, "kraken.api_key": api_key})
    env = env_for(tmp_path, TRADECTL_VAULT__PATH=str(vault_path), TRADECTL_VAULT_KEY=key.encode(),
                  TRADECTL_LOGGING__FORMAT="json", TRADECTL_LOGGING__LEVEL="DEBUG")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*TRADECTL, "run"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        try:
            wait_for(lambda: tradectl(["health"], env, tmp_path).returncode == 0, 40)
            time.sleep(2)
        finally:
            assert terminate(proc) == 0
    check = tradectl(["config", "check"], env, tmp_path)
    text = log.read_text() + check.stdout + check.stderr
    assert "engine started" in text  # the service really ran
    for value in (secret, api_key, key.encode()):
        for form in (value, json.dumps(value)[1:-1]):
            assert form not in text, "a secret value reached the output"
    assert check.returncode == 0, check.stderr
    assert 'api_secret = "**********"' in check.stdout  # loaded from the vault, shown redacted
    assert "kraken.api_secret" in check.stdout and "vault" in check.stdout
