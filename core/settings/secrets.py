"""Where secrets come from, and keeping their values out of the logs.

Precedence, highest first (docs/security.md):

1. the environment variable ``TRADECTL_<NAME>``: the secret name upper-cased with each ``.`` written
   as ``__`` (``kraken.api_secret`` -> ``TRADECTL_KRAKEN__API_SECRET``, the same spelling the settings
   use); an empty value counts as unset;
2. the file named by ``TRADECTL_<NAME>_FILE`` (e.g. a Docker or Kubernetes secret mount); a named file
   that cannot be read is an error, not a fall-through;
3. the file ``<secrets dir>/<name>`` (default ``/run/secrets``, where Docker mounts secrets);
4. the vault, when it was unlocked at start-up with ``TRADECTL_VAULT_PASSPHRASE`` or
   ``TRADECTL_VAULT_KEY`` (or their ``_FILE`` forms).

File contents lose one trailing newline. Every value resolved through :class:`SecretSources` is
registered with its :class:`Redactor`, and so is the vault passphrase or key.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import types
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from core.settings.vault import Credential, Passphrase, RawKey, Vault, VaultNotFound, validate_name
from exchanges.errors import TradectlError

ENV_PREFIX = "TRADECTL_"
FILE_SUFFIX = "_FILE"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
DEFAULT_VAULT_PATH = Path("data/vault.bin")
MAX_SECRET_FILE_BYTES = 64 * 1024

VAULT_PASSPHRASE_ENV = "TRADECTL_VAULT_PASSPHRASE"
VAULT_KEY_ENV = "TRADECTL_VAULT_KEY"


class SecretSourceError(TradectlError):
    """A configured source of a secret cannot be used (unreadable file, conflicting settings)."""


class MissingSecrets(SecretSourceError):
    """Required secrets have no value in any source. ``names`` lists them; values are never shown."""

    def __init__(self, names: list[str], hint: str | None = None) -> None:
        self.names = names
        ways = "; ".join(
            f"{name}: set {env_var_name(name)} or {env_var_name(name)}{FILE_SUFFIX}, "
            f"or run `tradectl vault set {name}`"
            for name in names
        )
        super().__init__(f"missing required secret(s) {', '.join(names)} ({ways})" + (f". {hint}" if hint else ""))


def env_var_name(name: str) -> str:
    """``kraken.api_secret`` -> ``TRADECTL_KRAKEN__API_SECRET``."""
    return ENV_PREFIX + validate_name(name).upper().replace(".", "__")


class Source(StrEnum):
    ENV = "environment"
    FILE = "file"
    SECRETS_DIR = "secrets directory"
    VAULT = "vault"


@dataclass(frozen=True)
class Located:
    """Where a secret's value comes from, without the value (for ``config check`` style reports).

    ``origin`` is ``None`` when no source has it; ``shadowed`` lists lower-precedence sources that
    also hold a value and are ignored.
    """

    name: str
    source: Source | None
    origin: str | None
    shadowed: tuple[str, ...] = ()


class Redactor:
    """The set of secret values to hide from log output, each replaced by ``***``.

    Values shorter than ``min_length`` are ignored (hiding every "abc" would garble the logs). Each
    value is also matched in the escaped forms it takes inside JSON, ``repr`` and URLs, so a JSON log
    line or a logged URL cannot carry it past the filter. Safe to use from several threads.
    """

    MASK = "***"

    def __init__(self, min_length: int = 4) -> None:
        self._min_length = min_length
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, value: str | SecretStr | None) -> bool:
        """Add a value; returns False when it is too short (or empty) to be redacted."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value or len(value) < self._min_length:
            return False
        forms = {
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            repr(value)[1:-1],
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value, safe=""),
        }
        with self._lock:
            if forms <= self._values:
                return True
            self._values |= forms
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        return True

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(self.MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message, the traceback and the stack.

    The message is rendered (``msg % args``) and redacted, so secrets inside any argument's ``str``
    are caught too; ``args`` is then cleared. A traceback is rendered into ``exc_text`` and redacted,
    and ``exc_info`` is dropped so no later formatter renders the unredacted one: formatters that
    ignore ``exc_text`` lose the traceback rather than leak it. Install it on handlers.
    """

    _formatter = logging.Formatter()

    def __init__(self, redactor: Redactor, name: str = "") -> None:
        super().__init__(name)
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string still must not leak its arguments
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _read_secret_file(path: Path, what: str) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretSourceError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise SecretSourceError(f"{what} {path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretSourceError(f"{what} {path} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


class SecretSources:
    """Resolves secret names through the environment, files, a secrets directory and the vault.

    Nothing here is process-wide: the bootstrap builds one with the environment it was given.
    ``vault_hint`` is added to :class:`MissingSecrets` messages (e.g. "a vault exists but is locked").
    """

    def __init__(self, env: Mapping[str, str], *, secrets_dir: Path | None = None, vault: Vault | None = None,
                 redactor: Redactor | None = None, vault_hint: str | None = None) -> None:
        self._env = env
        self._secrets_dir = secrets_dir
        self._vault = vault
        self.redactor = redactor if redactor is not None else Redactor()
        self._vault_hint = vault_hint

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, vault_path: Path | None = DEFAULT_VAULT_PATH,
                 secrets_dir: Path | None = DEFAULT_SECRETS_DIR, redactor: Redactor | None = None) -> SecretSources:
        """The start-up wiring: unlock the vault at ``vault_path`` if a passphrase or key is in ``env``.

        A credential without a vault file is an error (:class:`VaultNotFound`), as is any vault
        failure; a vault file without a credential is skipped, and named in missing-secret errors.
        ``secrets_dir`` is ignored when it does not exist.
        """
        redactor = redactor if redactor is not None else Redactor()
        credential, text = _credential_text(env)
        redactor.register(text)
        if isinstance(credential, RawKey):
            redactor.register(credential.encode())
            redactor.register(credential.key.hex())
        vault: Vault | None = None
        hint: str | None = None
        if vault_path is not None:
            if credential is not None:
                vault = Vault.open(vault_path, credential)
            elif vault_path.exists():
                hint = (f"The vault {vault_path} was not opened: set {VAULT_PASSPHRASE_ENV} or {VAULT_KEY_ENV} "
                        f"(or {VAULT_PASSPHRASE_ENV}{FILE_SUFFIX} / {VAULT_KEY_ENV}{FILE_SUFFIX}) to unlock it")
        elif credential is not None:
            raise VaultNotFound("a vault passphrase or key was supplied but no vault path is configured")
        if secrets_dir is not None and not secrets_dir.is_dir():
            secrets_dir = None
        return cls(env, secrets_dir=secrets_dir, vault=vault, redactor=redactor, vault_hint=hint)

    @property
    def vault(self) -> Vault | None:
        return self._vault

    def _candidates(self, name: str) -> Iterator[tuple[Source, str, Callable[[], str | None]]]:
        """(source, origin, loader) in precedence order; a loader returns the value or None."""
        var = env_var_name(name)
        yield Source.ENV, f"environment variable {var}", lambda: self._env.get(var) or None
        file_var = var + FILE_SUFFIX
        named = self._env.get(file_var)
        if named:
            named_path = Path(named)
            yield (Source.FILE, f"file {named_path} (from {file_var})",
                   lambda: _read_secret_file(named_path, f"the secret file named by {file_var},") or None)
        if self._secrets_dir is not None:
            mounted = self._secrets_dir / name

            def from_dir() -> str | None:
                return (_read_secret_file(mounted, "the secret file") or None) if mounted.is_file() else None

            yield Source.SECRETS_DIR, f"file {mounted}", from_dir
        vault = self._vault
        if vault is not None:
            yield Source.VAULT, f"vault {vault.path}", lambda: vault.get(name) if name in vault else None

    def resolve(self, name: str) -> SecretStr | None:
        """The value from the highest-precedence source that has one, registered for redaction."""
        for _source, _origin, load in self._candidates(name):
            value = load()
            if value is not None:
                self.redactor.register(value)
                return SecretStr(value)
        return None

    def locate(self, name: str) -> Located:
        """Which source supplies ``name`` and which others are shadowed; reads but never returns values."""
        found: list[tuple[Source, str]] = []
        for source, origin, load in self._candidates(name):
            if load() is not None:
                found.append((source, origin))
        if not found:
            return Located(name, None, None)
        return Located(name, found[0][0], found[0][1], tuple(origin for _, origin in found[1:]))

    def require(self, names: Iterable[str]) -> dict[str, SecretStr]:
        """All of ``names`` or :class:`MissingSecrets` listing every one that is missing (live mode)."""
        values: dict[str, SecretStr] = {}
        missing: list[str] = []
        for name in names:
            value = self.resolve(name)
            if value is None:
                missing.append(name)
            else:
                values[name] = value
        if missing:
            raise MissingSecrets(missing, self._vault_hint)
        return values

    def resolve_all(self, names: Iterable[str]) -> dict[str, SecretStr]:
        """Every name that has a value; the missing ones are left out."""
        return {name: value for name in names if (value := self.resolve(name)) is not None}


def credential_from_env(env: Mapping[str, str]) -> Credential | None:
    """The vault passphrase or key from ``TRADECTL_VAULT_PASSPHRASE`` / ``TRADECTL_VAULT_KEY`` or their
    ``_FILE`` forms. More than one of them set is an error rather than a silent choice."""
    return _credential_text(env)[0]


def _credential_text(env: Mapping[str, str]) -> tuple[Credential | None, str | None]:
    given = [var for var in (VAULT_KEY_ENV, VAULT_KEY_ENV + FILE_SUFFIX, VAULT_PASSPHRASE_ENV,
                             VAULT_PASSPHRASE_ENV + FILE_SUFFIX) if env.get(var)]
    if not given:
        return None, None
    if len(given) > 1:
        raise SecretSourceError(f"set only one of {', '.join(given)}")
    var = given[0]
    text = env[var]
    if var.endswith(FILE_SUFFIX):
        text = _read_secret_file(Path(text), f"the file named by {var},")
    if var.startswith(VAULT_KEY_ENV):
        try:
            return RawKey.parse(text), text.strip()
        except ValueError as exc:
            raise SecretSourceError(f"{var}: {exc}") from None
    if not text:
        raise SecretSourceError(f"{var}: the passphrase is empty")
    return Passphrase(text), text


def secret_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every ``SecretStr`` field in a settings model tree (``kraken.api_secret``)."""
    found: list[str] = []
    for field_name, info in model.model_fields.items():
        path = prefix + field_name
        options = _flatten(info.annotation)
        if SecretStr in options:
            found.append(path)
            continue
        for option in options:
            if isinstance(option, type) and issubclass(option, BaseModel):
                found.extend(secret_paths(option, path + "."))
    return found


def _flatten(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) or origin is typing.Annotated:
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_flatten(arg))
        return out
    return [annotation]


def settings_overrides(values: Mapping[str, SecretStr]) -> dict[str, Any]:
    """``{"kraken.api_secret": v}`` -> ``{"kraken": {"api_secret": v}}``, for ``load_settings(overrides=...)``."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


__all__ = [
    "DEFAULT_SECRETS_DIR", "DEFAULT_VAULT_PATH", "Located", "MissingSecrets", "RedactingFilter", "Redactor",
    "SecretSourceError", "SecretSources", "Source", "credential_from_env", "env_var_name",
    "secret_paths", "settings_overrides",
]
