"""Secret sources in their documented precedence, and redaction of secret values from logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from core.settings.secrets import (
    Located,
    MissingSecrets,
    RedactingFilter,
    Redactor,
    SecretSourceError,
    SecretSources,
    Source,
    credential_from_env,
    env_var_name,
    secret_paths,
    settings_overrides,
)
from core.settings.vault import InvalidSecretName, Passphrase, RawKey, ScryptParams, Vault, VaultNotFound, WrongKey

NAME = "kraken.api_secret"
VAR = "TRADECTL_KRAKEN__API_SECRET"
PASSPHRASE = "correct horse battery staple"


@pytest.mark.parametrize(
    "name, var",
    [
        ("kraken.api_secret", "TRADECTL_KRAKEN__API_SECRET"),
        ("telegram.bot_token", "TRADECTL_TELEGRAM__BOT_TOKEN"),
        ("chat.slack.app_token", "TRADECTL_CHAT__SLACK__APP_TOKEN"),
    ],
)
def test_env_var_names(name: str, var: str) -> None:
    assert env_var_name(name) == var


def test_env_var_name_rejects_invalid_names() -> None:
    with pytest.raises(InvalidSecretName):
        env_var_name("Kraken-API")


@pytest.fixture
def all_sources(tmp_path: Path) -> tuple[dict[str, str], Path, Vault]:
    secret_file = tmp_path / "mounted" / "kraken_secret"
    secret_file.parent.mkdir()
    secret_file.write_text("from-file-var\n")
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / NAME).write_text("from-secrets-dir")
    vault = Vault.create(tmp_path / "vault.bin", RawKey.generate(), values={NAME: "from-the-vault"})
    env = {VAR: "from-env", f"{VAR}_FILE": str(secret_file)}
    return env, secrets_dir, vault


def test_precedence_env_then_file_then_secrets_dir_then_vault(all_sources: tuple[dict[str, str], Path, Vault]) -> None:
    env, secrets_dir, vault = all_sources

    def resolve() -> str | None:
        value = SecretSources(env, secrets_dir=secrets_dir, vault=vault).resolve(NAME)
        return None if value is None else value.get_secret_value()

    assert resolve() == "from-env"
    env[VAR] = ""  # empty counts as unset
    assert resolve() == "from-file-var"
    del env[f"{VAR}_FILE"]
    assert resolve() == "from-secrets-dir"
    (secrets_dir / NAME).unlink()
    assert resolve() == "from-the-vault"
    vault.delete(NAME)
    assert resolve() is None


def test_locate_reports_the_source_and_shadowed_ones_without_values(
    all_sources: tuple[dict[str, str], Path, Vault]
) -> None:
    env, secrets_dir, vault = all_sources
    located = SecretSources(env, secrets_dir=secrets_dir, vault=vault).locate(NAME)
    assert located.source is Source.ENV
    assert located.origin == f"environment variable {VAR}"
    assert len(located.shadowed) == 3 and located.shadowed[-1] == f"vault {vault.path}"
    assert "from-" not in repr(located)
    assert SecretSources({}).locate("telegram.bot_token") == Located("telegram.bot_token", None, None)


def test_file_contents_lose_one_trailing_newline(tmp_path: Path) -> None:
    for content, expected in [("abcdef\n", "abcdef"), ("abcdef\r\n", "abcdef"), ("abcdef\n\n", "abcdef\n"),
                              ("abcdef", "abcdef")]:
        path = tmp_path / "s"
        path.write_text(content, newline="")
        value = SecretSources({f"{VAR}_FILE": str(path)}).resolve(NAME)
        assert value is not None and value.get_secret_value() == expected


def test_a_named_file_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    sources = SecretSources({f"{VAR}_FILE": str(tmp_path / "missing")})
    with pytest.raises(SecretSourceError, match=f"{VAR}_FILE"):
        sources.resolve(NAME)


def test_require_lists_every_missing_secret_and_how_to_supply_it() -> None:
    sources = SecretSources({"TRADECTL_KRAKEN__API_KEY": "key-value-1"})
    with pytest.raises(MissingSecrets) as err:
        sources.require(["kraken.api_key", "kraken.api_secret", "telegram.bot_token"])
    assert err.value.names == ["kraken.api_secret", "telegram.bot_token"]
    message = str(err.value)
    assert VAR in message and f"{VAR}_FILE" in message and "tradectl vault set kraken.api_secret" in message
    assert "key-value-1" not in message


def test_resolved_values_are_registered_for_redaction(all_sources: tuple[dict[str, str], Path, Vault]) -> None:
    _env, _secrets_dir, vault = all_sources
    sources = SecretSources({}, vault=vault)
    assert sources.require([NAME])[NAME].get_secret_value() == "from-the-vault"
    assert sources.redactor.redact("value=from-the-vault") == "value=***"


# --- start-up wiring -----------------------------------------------------------------------------------


def test_from_env_unlocks_the_vault_and_redacts_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "vault.bin"
    Vault.create(path, Passphrase(PASSPHRASE), scrypt=ScryptParams(14), values={NAME: "vault-secret-1"})
    sources = SecretSources.from_env({"TRADECTL_VAULT_PASSPHRASE": PASSPHRASE}, vault_path=path,
                                     secrets_dir=tmp_path / "absent")
    assert sources.resolve(NAME) == SecretStr("vault-secret-1")
    assert sources.redactor.redact(f"p={PASSPHRASE} s=vault-secret-1") == "p=*** s=***"


def test_from_env_with_a_key_file(tmp_path: Path) -> None:
    key = RawKey.generate()
    path = tmp_path / "vault.bin"
    Vault.create(path, key, values={NAME: "vault-secret-1"})
    key_file = tmp_path / "vault.key"
    key_file.write_text(key.key.hex() + "\n")
    sources = SecretSources.from_env({"TRADECTL_VAULT_KEY_FILE": str(key_file)}, vault_path=path)
    assert sources.resolve(NAME) == SecretStr("vault-secret-1")
    assert sources.redactor.redact(key.encode()) == "***"
    assert sources.redactor.redact(key.key.hex()) == "***"


def test_from_env_failures_are_loud(tmp_path: Path) -> None:
    path = tmp_path / "vault.bin"
    Vault.create(path, Passphrase(PASSPHRASE), scrypt=ScryptParams(14))
    with pytest.raises(WrongKey):
        SecretSources.from_env({"TRADECTL_VAULT_PASSPHRASE": "not the passphrase"}, vault_path=path)
    with pytest.raises(VaultNotFound):
        SecretSources.from_env({"TRADECTL_VAULT_PASSPHRASE": PASSPHRASE}, vault_path=tmp_path / "other.bin")
    locked = SecretSources.from_env({}, vault_path=path)
    assert locked.vault is None
    with pytest.raises(MissingSecrets, match="TRADECTL_VAULT_PASSPHRASE"):
        locked.require([NAME])


def test_credential_from_env() -> None:
    key = RawKey.generate()
    assert credential_from_env({}) is None
    assert credential_from_env({"TRADECTL_VAULT_KEY": key.encode()}) == key
    assert credential_from_env({"TRADECTL_VAULT_PASSPHRASE": PASSPHRASE}) == Passphrase(PASSPHRASE)
    with pytest.raises(SecretSourceError, match="set only one of"):
        credential_from_env({"TRADECTL_VAULT_KEY": key.encode(), "TRADECTL_VAULT_PASSPHRASE": PASSPHRASE})
    with pytest.raises(SecretSourceError, match="TRADECTL_VAULT_KEY"):
        credential_from_env({"TRADECTL_VAULT_KEY": "too-short"})


# --- settings -----------------------------------------------------------------------------------------


class _Venue(BaseModel):
    api_key: SecretStr | None = None
    url: str = "https://example.invalid"


class _Chat(BaseModel):
    token: SecretStr | None = None


class _Root(BaseModel):
    kraken: _Venue = _Venue()
    telegram: _Chat | None = None
    name: str = "x"


def test_secret_paths_walks_the_settings_models() -> None:
    assert secret_paths(_Root) == ["kraken.api_key", "telegram.token"]


def test_project_settings_secrets_are_found_and_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings.config import Settings, load_settings

    assert NAME in secret_paths(Settings)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={}, dotenv_path=None,
                             overrides=settings_overrides({NAME: SecretStr("from-the-vault")}))
    assert settings.kraken.api_secret is not None
    assert settings.kraken.api_secret.get_secret_value() == "from-the-vault"


# --- redaction -------------------------------------------------------------------------------------------


def test_redactor_basics() -> None:
    redactor = Redactor()
    assert redactor.register("abc") is False  # too short to redact safely
    assert redactor.register("") is False and redactor.register(None) is False
    assert redactor.register(SecretStr("abcd1234"))
    redactor.register("abcd12345678")
    assert redactor.redact("a=abcd12345678 b=abcd1234 c=abc") == "a=*** b=*** c=abc"
    assert Redactor().redact("nothing registered") == "nothing registered"


@pytest.mark.parametrize("secret", ['pa"ss\\word', "wörd-ÄÖÜ-🔑", "a+b/c=d&e"])
def test_redactor_catches_escaped_forms(secret: str) -> None:
    import urllib.parse

    redactor = Redactor()
    redactor.register(secret)
    for text in (json.dumps({"msg": secret}), json.dumps({"msg": secret}, ensure_ascii=False), repr({"k": secret}),
                 "https://x.invalid/?t=" + urllib.parse.quote(secret, safe=""),
                 "https://x.invalid/?t=" + urllib.parse.quote_plus(secret)):
        assert "***" in redactor.redact(text), text
        assert secret not in redactor.redact(text)


class _Holder:
    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return f"Holder({self.value})"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, Redactor]]:
    redactor = Redactor()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("tradectl.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, redactor
    logger.removeHandler(handler)


def test_filter_redacts_messages_args_and_tracebacks(captured: tuple[logging.Logger, io.StringIO, Redactor]) -> None:
    logger, stream, redactor = captured
    secret = "sk-live-0123456789"
    redactor.register(secret)
    logger.info("plain %s", secret)
    logger.info(f"inline {secret}")
    logger.info("object %s and %r", _Holder(secret), {"secret": secret})
    try:
        raise ValueError(f"exchange rejected key {secret}")
    except ValueError:
        logger.exception("order failed for %s", "BTC/USD")
    output = stream.getvalue()
    assert secret not in output
    assert output.count("***") >= 5
    assert "Traceback (most recent call last)" in output and "ValueError: exchange rejected key ***" in output


def test_logging_setup_with_json_lines_redacts_escaped_values() -> None:
    """The wiring the service uses: core.runtime.logs.setup_logging(redact=redactor.redact)."""
    from core.runtime.logs import setup_logging

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    redactor = Redactor()
    secret = 'tok"en\\with-quotes'
    redactor.register(secret)
    stream = io.StringIO()
    try:
        setup_logging(level="INFO", fmt="json", stream=stream, redact=redactor.redact)
        logging.getLogger("tradectl.test").info("token is %s", secret)
        try:
            raise RuntimeError(secret)
        except RuntimeError:
            logging.getLogger("tradectl.test").exception("failed")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    output = stream.getvalue()
    assert json.dumps(secret)[1:-1] not in output and secret not in output
    assert output.count("***") >= 2
