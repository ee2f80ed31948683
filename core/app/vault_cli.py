"""``tradectl vault``: create and maintain the encrypted vault (mounted by core.app.cli).

Secret values are never printed and never taken from the command line, where they would land in
the shell history and in ``ps``: ``set`` reads them from a hidden prompt, or from standard input
when it is not a terminal. The vault is unlocked with ``--key-file``, else ``TRADECTL_VAULT_KEY`` /
``TRADECTL_VAULT_PASSPHRASE`` (or their ``_FILE`` forms), else a hidden prompt.

Exit codes: 0 ok, 1 failure (wrong passphrase, tampered or missing vault, ...), 2 usage.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from core.settings.secrets import (
    DEFAULT_VAULT_PATH,
    FILE_SUFFIX,
    VAULT_KEY_ENV,
    VAULT_PASSPHRASE_ENV,
    SecretSourceError,
    credential_from_env,
    env_var_name,
)
from core.settings.vault import (
    DEFAULT_SCRYPT,
    FORMAT_VERSION,
    Credential,
    InvalidSecretName,
    Passphrase,
    RawKey,
    ScryptParams,
    Vault,
    VaultError,
    validate_name,
)

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
NEW_PASSPHRASE_ENV = "TRADECTL_VAULT_NEW_PASSPHRASE"

vault_app = typer.Typer(
    help="Encrypted vault (AES-256-GCM) for exchange keys and bot tokens. See docs/security.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PathOpt = Annotated[
    Path,
    typer.Option("--path", envvar="TRADECTL_VAULT__PATH", dir_okay=False, help="The vault file."),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", dir_okay=False,
                 help="Unlock with the raw key in this file (base64 or hex) instead of a passphrase."),
]
GenerateKeyOpt = Annotated[
    Path | None,
    typer.Option("--generate-key", dir_okay=False,
                 help="Lock with a new random 256-bit key, written to this new file (mode 0600)."),
]
ScryptOpt = Annotated[
    int,
    typer.Option("--scrypt-log-n", min=14, max=20,
                 help="scrypt cost as log2(n) (memory is 2^n KiB with r=8); lower it on small devices."),
]


def _fail(message: str, code: int = EXIT_FAIL) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _handled() -> Iterator[None]:
    try:
        yield
    except InvalidSecretName as exc:
        _fail(str(exc), EXIT_USAGE)
    except (VaultError, SecretSourceError) as exc:
        _fail(str(exc))


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _key_from_file(path: Path) -> RawKey:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read the key file {path}: {exc}")
    try:
        return RawKey.parse(text)
    except ValueError as exc:
        _fail(f"{path}: {exc}")


def _write_key_file(path: Path, key: RawKey) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        _fail(f"{path} already exists; choose a new file for the key")
    except OSError as exc:
        _fail(f"cannot create the key file {path}: {exc.strerror}")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key.encode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _unlock_credential(key_file: Path | None, *, may_prompt: bool) -> Credential:
    if key_file is not None:
        return _key_from_file(key_file)
    with _handled():
        credential = credential_from_env(os.environ)
    if credential is not None:
        return credential
    if not may_prompt:
        _fail(
            f"no vault passphrase or key: standard input carries the value, so set {VAULT_PASSPHRASE_ENV} or "
            f"{VAULT_KEY_ENV} (or their {FILE_SUFFIX} forms), or pass --key-file",
            EXIT_USAGE,
        )
    return Passphrase(typer.prompt("Vault passphrase", hide_input=True))


def _new_credential(key_file: Path | None, generate_key: Path | None, *, from_env: Credential | None,
                    prompt: str) -> tuple[Credential, Path | None]:
    """The credential to lock with, and the key file written for it (to remove if locking fails)."""
    if key_file is not None and generate_key is not None:
        _fail("use either a key file or --generate-key, not both", EXIT_USAGE)
    if key_file is not None:
        return _key_from_file(key_file), None
    if generate_key is not None:
        key = RawKey.generate()
        _write_key_file(generate_key, key)
        return key, generate_key
    if from_env is not None:
        return from_env, None
    return Passphrase(typer.prompt(prompt, hide_input=True, confirmation_prompt=True)), None


@contextlib.contextmanager
def _remove_on_failure(written: Path | None) -> Iterator[None]:
    try:
        yield
    except BaseException:
        if written is not None:
            with contextlib.suppress(OSError):
                written.unlink()
        raise


def _open(path: Path, key_file: Path | None, *, may_prompt: bool = True) -> Vault:
    credential = _unlock_credential(key_file, may_prompt=may_prompt)
    with _handled():
        return Vault.open(path, credential)


@vault_app.command("init")
def init(
    path: PathOpt = DEFAULT_VAULT_PATH,
    key_file: KeyFileOpt = None,
    generate_key: GenerateKeyOpt = None,
    scrypt_log_n: ScryptOpt = DEFAULT_SCRYPT.log2_n,
) -> None:
    """Create a new, empty vault (mode 0600), locked with a passphrase or a raw key."""
    if path.exists():
        _fail(f"a vault already exists at {path}; use `tradectl vault rotate` to change its key")
    from_env: Credential | None = None
    if key_file is None and generate_key is None:
        with _handled():
            from_env = credential_from_env(os.environ)
    credential, written = _new_credential(key_file, generate_key, from_env=from_env, prompt="New vault passphrase")
    with _remove_on_failure(written), _handled():
        vault = Vault.create(path, credential, scrypt=ScryptParams(scrypt_log_n))
    typer.echo(f"created {path} ({vault.kdf_description})")
    if written is not None:
        typer.echo(f"key written to {written}: keep it away from the vault file and back it up; "
                   f"start the service with {VAULT_KEY_ENV}{FILE_SUFFIX}={written}")


@vault_app.command("set")
def set_secret(
    name: Annotated[str, typer.Argument(help="Secret name, e.g. kraken.api_secret.")],
    path: PathOpt = DEFAULT_VAULT_PATH,
    key_file: KeyFileOpt = None,
) -> None:
    """Store or replace a secret: from a hidden prompt, or from standard input when it is not a terminal.

    Never from the command line. One trailing newline of standard input is dropped.
    """
    with _handled():
        validate_name(name)
    interactive = _stdin_is_tty()
    vault = _open(path, key_file, may_prompt=interactive)
    if interactive:
        value = typer.prompt(f"Value for {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    with _handled():
        vault.set(name, value)
    typer.echo(f"stored {name} in {path}")
    shadowing = [var for var in (env_var_name(name), env_var_name(name) + FILE_SUFFIX) if os.environ.get(var)]
    if shadowing:
        typer.echo(f"note: {' and '.join(shadowing)} is set here and takes precedence over the vault", err=True)


@vault_app.command("list")
def list_names(path: PathOpt = DEFAULT_VAULT_PATH, key_file: KeyFileOpt = None) -> None:
    """Print the names of the stored secrets, one per line (never their values)."""
    for name in _open(path, key_file).names():
        typer.echo(name)


@vault_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Secret name.")],
    path: PathOpt = DEFAULT_VAULT_PATH,
    key_file: KeyFileOpt = None,
) -> None:
    """Remove a secret from the vault."""
    with _handled():
        validate_name(name)
    vault = _open(path, key_file)
    with _handled():
        vault.delete(name)
    typer.echo(f"deleted {name} from {path}")


@vault_app.command("check")
def check(path: PathOpt = DEFAULT_VAULT_PATH, key_file: KeyFileOpt = None) -> None:
    """Unlock the vault and verify every entry; exit 1 on any failure."""
    vault = _open(path, key_file)
    typer.echo(f"ok: {path}: {len(vault)} secrets, format version {FORMAT_VERSION}, {vault.kdf_description}")


@vault_app.command("rotate")
def rotate(
    path: PathOpt = DEFAULT_VAULT_PATH,
    key_file: KeyFileOpt = None,
    new_key_file: Annotated[
        Path | None,
        typer.Option("--new-key-file", dir_okay=False, help="Lock with the raw key in this file from now on."),
    ] = None,
    generate_key: GenerateKeyOpt = None,
    scrypt_log_n: Annotated[
        int | None,
        typer.Option("--scrypt-log-n", min=14, max=20, help="New scrypt cost as log2(n) (default: keep)."),
    ] = None,
) -> None:
    """Re-encrypt every secret under a new passphrase or key, replacing the file atomically.

    The new passphrase comes from TRADECTL_VAULT_NEW_PASSPHRASE or a prompt, unless a key is given.
    """
    vault = _open(path, key_file)
    new_passphrase = os.environ.get(NEW_PASSPHRASE_ENV)
    from_env = Passphrase(new_passphrase) if new_passphrase else None
    credential, written = _new_credential(new_key_file, generate_key, from_env=from_env, prompt="New vault passphrase")
    with _remove_on_failure(written), _handled():
        vault.rotate(credential, scrypt=ScryptParams(scrypt_log_n) if scrypt_log_n else None)
    what = "key" if isinstance(credential, RawKey) else "passphrase"
    typer.echo(f"rotated {path}: {len(vault)} secrets re-encrypted under the new {what} ({vault.kdf_description})")
    typer.echo("update the passphrase or key where the service starts; backups of the old file still "
               "open with the old one")
