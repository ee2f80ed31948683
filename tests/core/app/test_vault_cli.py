"""`tradectl vault ...` through its command line: what an operator types and sees."""

from __future__ import annotations

import os
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.app.vault_cli import vault_app
from core.settings.vault import Passphrase, RawKey, Vault, WrongKey

PASSPHRASE = "correct horse battery staple"
SECRET = "kraken-secret-value-0123456789"
CREDENTIAL_VARS = ("TRADECTL_VAULT_PASSPHRASE", "TRADECTL_VAULT_PASSPHRASE_FILE", "TRADECTL_VAULT_KEY",
                   "TRADECTL_VAULT_KEY_FILE", "TRADECTL_VAULT_NEW_PASSPHRASE", "TRADECTL_VAULT__PATH",
                   "TRADECTL_KRAKEN__API_SECRET", "TRADECTL_KRAKEN__API_SECRET_FILE")


def run(args: list[str], *, input: str | None = None, **env: str) -> Result:
    full: dict[str, str | None] = {var: None for var in CREDENTIAL_VARS}
    full.update(env)
    return CliRunner().invoke(vault_app, args, input=input, env=full)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vault.bin"


@pytest.fixture
def vault(path: Path) -> Path:
    result = run(["init", "--path", str(path), "--scrypt-log-n", "14"], TRADECTL_VAULT_PASSPHRASE=PASSPHRASE)
    assert result.exit_code == 0, result.output
    return path


def unlocked(**extra: str) -> dict[str, str]:
    return {"TRADECTL_VAULT_PASSPHRASE": PASSPHRASE, **extra}


def test_init_creates_a_private_vault(vault: Path) -> None:
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    assert Vault.open(vault, Passphrase(PASSPHRASE)).names() == []


def test_init_with_a_prompted_passphrase(path: Path) -> None:
    result = run(["init", "--path", str(path), "--scrypt-log-n", "14"], input=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert result.exit_code == 0, result.output
    assert PASSPHRASE not in result.output
    Vault.open(path, Passphrase(PASSPHRASE))


def test_init_refuses_an_existing_vault_and_weak_passphrases(vault: Path, tmp_path: Path) -> None:
    before = vault.read_bytes()
    result = run(["init", "--path", str(vault), "--generate-key", str(tmp_path / "k")], **unlocked())
    assert result.exit_code == 1 and "already exists" in result.output
    assert vault.read_bytes() == before and not (tmp_path / "k").exists()
    weak = run(["init", "--path", str(tmp_path / "other.bin")], TRADECTL_VAULT_PASSPHRASE="hunter2")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output


def test_set_reads_stdin_and_never_prints_the_value(vault: Path) -> None:
    result = run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET + "\n", **unlocked())
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert Vault.open(vault, Passphrase(PASSPHRASE)).get("kraken.api_secret") == SECRET
    listed = run(["list", "--path", str(vault)], **unlocked())
    assert listed.exit_code == 0 and listed.stdout.split() == ["kraken.api_secret"]


def test_set_refuses_a_value_on_the_command_line(vault: Path) -> None:
    result = run(["set", "kraken.api_secret", SECRET, "--path", str(vault)], **unlocked())
    assert result.exit_code == 2
    assert Vault.open(vault, Passphrase(PASSPHRASE)).names() == []


def test_set_usage_errors(vault: Path) -> None:
    no_credential = run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET)
    assert no_credential.exit_code == 2 and "TRADECTL_VAULT_PASSPHRASE" in no_credential.output
    bad_name = run(["set", "Kraken-Secret", "--path", str(vault)], input=SECRET, **unlocked())
    assert bad_name.exit_code == 2 and "invalid secret name" in bad_name.output
    empty = run(["set", "kraken.api_secret", "--path", str(vault)], input="\n", **unlocked())
    assert empty.exit_code == 1 and "empty" in empty.output


def test_set_warns_when_the_environment_shadows_the_vault(vault: Path) -> None:
    result = run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET,
                 **unlocked(TRADECTL_KRAKEN__API_SECRET="something-else"))
    assert result.exit_code == 0
    assert "TRADECTL_KRAKEN__API_SECRET is set here and takes precedence" in result.stderr


def test_failures_exit_1_with_a_clear_message(vault: Path) -> None:
    run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET, **unlocked())
    wrong = run(["list", "--path", str(vault)], TRADECTL_VAULT_PASSPHRASE="not the passphrase at all")
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.stderr

    data = bytearray(vault.read_bytes())
    data[-40] ^= 0x01
    vault.write_bytes(bytes(data))
    tampered = run(["check", "--path", str(vault)], **unlocked())
    assert tampered.exit_code == 1 and "modified or damaged" in tampered.stderr

    vault.write_bytes(bytes(data[:100]))
    truncated = run(["list", "--path", str(vault)], **unlocked())
    assert truncated.exit_code == 1 and "truncated" in truncated.stderr

    vault.chmod(0o644)
    readable = run(["list", "--path", str(vault)], **unlocked())
    assert readable.exit_code == 1 and f"chmod 600 {vault}" in readable.stderr

    missing = run(["list", "--path", str(vault.parent / "nope.bin")], **unlocked())
    assert missing.exit_code == 1 and "tradectl vault init" in missing.stderr
    for result in (wrong, tampered, truncated, readable, missing):
        assert SECRET not in result.output


def test_delete_and_check(vault: Path) -> None:
    run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET, **unlocked())
    run(["set", "telegram.bot_token", "--path", str(vault)], input="123456:token", **unlocked())
    assert run(["delete", "kraken.api_secret", "--path", str(vault)], **unlocked()).exit_code == 0
    again = run(["delete", "kraken.api_secret", "--path", str(vault)], **unlocked())
    assert again.exit_code == 1 and "no secret 'kraken.api_secret'" in again.output
    checked = run(["check", "--path", str(vault)], **unlocked())
    assert checked.exit_code == 0
    assert "ok:" in checked.stdout and "1 secrets" in checked.stdout and "scrypt n=2^14" in checked.stdout


def test_path_from_the_environment(vault: Path) -> None:
    result = run(["set", "kraken.api_secret"], input=SECRET, **unlocked(TRADECTL_VAULT__PATH=str(vault)))
    assert result.exit_code == 0, result.output
    assert run(["list"], **unlocked(TRADECTL_VAULT__PATH=str(vault))).stdout.split() == ["kraken.api_secret"]


def test_rotate_to_a_new_passphrase(vault: Path) -> None:
    run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET, **unlocked())
    new = "an entirely new passphrase"
    result = run(["rotate", "--path", str(vault)], **unlocked(TRADECTL_VAULT_NEW_PASSPHRASE=new))
    assert result.exit_code == 0, result.output
    with pytest.raises(WrongKey):
        Vault.open(vault, Passphrase(PASSPHRASE))
    assert Vault.open(vault, Passphrase(new)).get("kraken.api_secret") == SECRET


def test_rotate_with_prompts(vault: Path) -> None:
    run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET, **unlocked())
    new = "an entirely new passphrase"
    result = run(["rotate", "--path", str(vault)], input=f"{PASSPHRASE}\n{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert Vault.open(vault, Passphrase(new)).get("kraken.api_secret") == SECRET


def test_rotate_to_a_generated_key_then_use_it(vault: Path, tmp_path: Path) -> None:
    run(["set", "kraken.api_secret", "--path", str(vault)], input=SECRET, **unlocked())
    key_file = tmp_path / "vault.key"
    result = run(["rotate", "--path", str(vault), "--generate-key", str(key_file)], **unlocked())
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = RawKey.parse(key_file.read_text())
    assert key.encode() not in result.output
    assert Vault.open(vault, key).get("kraken.api_secret") == SECRET
    assert run(["list", "--path", str(vault)], **unlocked()).exit_code == 1
    by_env = run(["list", "--path", str(vault)], TRADECTL_VAULT_KEY_FILE=str(key_file))
    by_option = run(["list", "--path", str(vault), "--key-file", str(key_file)])
    assert by_env.stdout.split() == by_option.stdout.split() == ["kraken.api_secret"]


def test_rotate_refuses_to_overwrite_a_key_file(vault: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "existing.key"
    key_file.write_text("keep me\n")
    before = vault.read_bytes()
    result = run(["rotate", "--path", str(vault), "--generate-key", str(key_file)], **unlocked())
    assert result.exit_code == 1 and "already exists" in result.output
    assert vault.read_bytes() == before and key_file.read_text() == "keep me\n"


def _expect(fd: int, text: bytes, seen: bytearray, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"did not see {text!r} in {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                chunk = b""
            assert chunk, f"terminal closed before {text!r}; saw {bytes(seen)!r}"
            seen += chunk


def test_set_on_a_terminal_prompts_without_echo(vault: Path) -> None:
    """A real pseudo-terminal: the value is typed at a hidden prompt and never shown."""
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env.update(TRADECTL_VAULT_PASSPHRASE=PASSPHRASE, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from core.app.vault_cli import vault_app; vault_app()",
         "set", "kraken.api_secret", "--path", str(vault)],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()
    try:
        # The prompt's trailing space is written once echo is off; typing earlier would be echoed.
        _expect(master, b"Value for kraken.api_secret: ", seen)
        os.write(master, SECRET.encode() + b"\n")
        _expect(master, b"Repeat for confirmation: ", seen)
        os.write(master, SECRET.encode() + b"\n")
        _expect(master, b"stored kraken.api_secret", seen)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert SECRET.encode() not in seen
    assert Vault.open(vault, Passphrase(PASSPHRASE)).get("kraken.api_secret") == SECRET
