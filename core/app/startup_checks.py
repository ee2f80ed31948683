"""Start-up checks that run before anything is opened: every one is a configuration error.

``tradectl run`` and ``tradectl config check`` call these after the settings load and before the
database, the vault's consumers or any platform is touched, so a missing token, two vault
credentials, a vault readable by others or a log file that cannot be written stops the program
with exit 2 and one line naming the key, instead of a traceback after the database was opened.
The components keep their own checks as a second line (a test may build them directly).

What is not a configuration error stays a failure (exit 1): a vault whose contents were altered or
damaged, a database that does not answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from core.app.errors import StartupError
from core.settings.config import ConfigError, Settings, setting_origin
from core.settings.secrets import (
    FILE_SUFFIX,
    VAULT_KEY_ENV,
    VAULT_PASSPHRASE_ENV,
    Redactor,
    SecretSourceError,
    SecretSources,
)
from core.settings.vault import VaultError, VaultNotFound, VaultPermissionError, WrongKey

_CREDENTIAL_VARS = (VAULT_KEY_ENV, VAULT_KEY_ENV + FILE_SUFFIX,
                    VAULT_PASSPHRASE_ENV, VAULT_PASSPHRASE_ENV + FILE_SUFFIX)


def open_secret_sources(settings: Settings, env: Mapping[str, str], redactor: Redactor) -> SecretSources:
    """The secret sources for ``settings``, the vault unlocked if a credential is set.

    Raises :class:`ConfigError` for what the operator configured wrongly (two credentials, an
    unreadable ``*_FILE``, no vault at ``vault.path``, a vault readable by others, the wrong
    passphrase or key) and a :class:`~core.app.errors.StartupError` (cause ``secrets``) for a vault that
    is damaged or tampered with.
    """
    try:
        return SecretSources.from_env(env, vault_path=settings.vault.path, secrets_dir=settings.vault.secrets_dir,
                                      redactor=redactor)
    except SecretSourceError as exc:
        raise ConfigError(str(exc)) from None
    except (VaultNotFound, VaultPermissionError) as exc:
        raise ConfigError(f"vault.path: {exc} (from {setting_origin(settings, ('vault', 'path'))})") from None
    except WrongKey as exc:
        given = next((var for var in _CREDENTIAL_VARS if env.get(var)), "the vault credential")
        raise ConfigError(f"{given}: {exc}") from None
    except VaultError as exc:
        raise StartupError.secrets(str(exc)) from None


def resolve_secrets(sources: SecretSources, names: Iterable[str], *,
                    required: Iterable[str] = ()) -> dict[str, SecretStr]:
    """Every secret that has a value; a missing ``required`` one or a source that cannot be read is a
    :class:`ConfigError` naming it."""
    try:
        values = sources.resolve_all(names)
        sources.require(required)
    except SecretSourceError as exc:  # MissingSecrets included
        raise ConfigError(str(exc)) from None
    except VaultError as exc:  # an entry that is not text
        raise StartupError.secrets(str(exc)) from None
    return values


def _set(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value())


def platform_problems(settings: Settings) -> list[str]:
    """An enabled chat platform needs its credentials (from any secret source)."""
    problems = []
    if settings.telegram.enabled and not _set(settings.telegram.token):
        problems.append("telegram.enabled needs telegram.token (TRADECTL_TELEGRAM__TOKEN, a secret file or the vault)")
    if settings.discord.enabled and not _set(settings.discord.token):
        problems.append("discord.enabled needs discord.token (TRADECTL_DISCORD__TOKEN, a secret file or the vault)")
    slack = settings.slack
    if slack.enabled:
        missing = slack.missing_secrets()
        if missing:
            problems.append(f"slack.enabled in {slack.mode} mode needs {' and '.join(missing)} "
                            "(environment variable, secret file or the vault)")
    return problems


def log_file_problem(settings: Settings) -> str | None:
    """``logging.file`` must be writable: logging is set up first, and a failure there has no log."""
    path = settings.logging.file
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return (f"logging.file: cannot write {path}: {exc.strerror or exc} "
                f"(from {setting_origin(settings, ('logging', 'file'))})")
    return None


BUNDLED_TIMEFRAME = "1h"  # the candles shipped in exchanges/data (exchanges.replay.load_bundled)


def replay_problem(settings: Settings) -> str | None:
    """Paper trading replays candles: a file that is not there, or bundled hourly candles for another
    timeframe, would stop the trading core after the service started. Paper on a live feed
    (``trading.feed``) replays nothing."""
    if settings.trading.mode != "paper" or settings.trading.feed != "replay":
        return None
    csv = settings.replay.csv
    if csv is None:
        if settings.trading.timeframe != BUNDLED_TIMEFRAME:
            return (f"trading.timeframe: the bundled replay candles are {BUNDLED_TIMEFRAME}, not "
                    f"{settings.trading.timeframe}: set replay.csv to candles of that timeframe "
                    f"(from {setting_origin(settings, ('trading', 'timeframe'))})")
        return None
    try:
        with csv.open("rb"):
            pass
    except OSError as exc:
        origin = setting_origin(settings, ("replay", "csv"))
        return f"replay.csv: cannot read {csv}: {exc.strerror or exc} (from {origin})"
    return None


def startup_problems(settings: Settings) -> list[str]:
    """Everything a resolved configuration must satisfy before the service opens anything."""
    problems = platform_problems(settings)
    for problem in (log_file_problem(settings), replay_problem(settings)):
        if problem:
            problems.append(problem)
    return problems
