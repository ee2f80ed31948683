"""Typed, frozen settings.

Sources, lowest to highest precedence: defaults, the TOML file (``--config``, else ``./tradectl.toml``
if present), a ``.env`` file, the process environment. Variables use the ``TRADECTL_`` prefix and
``__`` for nesting (``TRADECTL_RISK__MAX_OPEN_POSITIONS=3``); ``DATABASE_URL`` is accepted as the
conventional alias of ``TRADECTL_DATABASE__URL``.

Every model forbids unknown keys, and unknown ``TRADECTL_`` variables are reported by name: an
override that silently does nothing is a bug we refuse to have. Secrets are ``SecretStr``; secrets
inside URLs (a database password, a webhook URL) are found by :mod:`core.settings.url_secrets`. Settings that
name something (a command, a pair, a user or chat id) must name something that exists
(:mod:`core.settings.config_checks`).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, PrivateAttr, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.settings.settings_models import (
    BacktestSettings,
    CcxtSettings,
    ChatSettings,
    DatabaseSettings,
    DiscordSettings,
    LeaderSettings,
    LoggingSettings,
    MetricsSettings,
    NotifySettings,
    PaperSettings,
    ReplaySettings,
    RiskSettings,
    ScheduleSettings,
    ServiceSettings,
    SlackSettings,
    StrategySettings,
    TelegramSettings,
    TradingSettings,
    VaultSettings,
    VenueSettings,
)
from exchanges.errors import TradectlError

ENV_PREFIX = "TRADECTL_"
DEFAULT_CONFIG = Path("tradectl.toml")


class ConfigError(TradectlError):
    """Bad configuration. The message names the key (and the file or variable it came from)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    service: ServiceSettings = ServiceSettings()
    database: DatabaseSettings = DatabaseSettings()
    logging: LoggingSettings = LoggingSettings()
    trading: TradingSettings = TradingSettings()
    paper: PaperSettings = PaperSettings()
    replay: ReplaySettings = ReplaySettings()
    risk: RiskSettings = RiskSettings()
    strategies: StrategySettings = StrategySettings()
    chat: ChatSettings = ChatSettings()
    notify: NotifySettings = NotifySettings()
    kraken: VenueSettings = VenueSettings()
    coinbase: VenueSettings = VenueSettings()
    ccxt: CcxtSettings = CcxtSettings()
    vault: VaultSettings = VaultSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    backtest: BacktestSettings = BacktestSettings()
    leader: LeaderSettings = LeaderSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()
    metrics: MetricsSettings = MetricsSettings()

    # where each key came from (file, variable), for messages that name it; filled by load_settings
    _origins: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Everything arrives through init kwargs, merged by load_settings, so that each key's origin
        # is known and can be named in errors.
        return (init_settings,)

    @model_validator(mode="after")
    def _live_needs_explicit_switch(self) -> Settings:
        if self.trading.mode == "live" and self.trading.venue == "paper":
            raise ValueError("trading.mode = 'live' needs trading.venue set to a live venue (kraken or coinbase)")
        if self.trading.mode == "paper" and self.trading.venue != "paper":
            raise ValueError(
                f"trading.venue = {self.trading.venue!r} trades real money: set trading.mode = 'live' "
                "explicitly (paper is the default)"
            )
        return self


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for part in path[:-1]:
        existing = node.get(part)
        if not isinstance(existing, dict):
            existing = {}
            node[part] = existing
        node = existing
    node[path[-1]] = value


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_dotenv(path: Path) -> dict[str, str]:
    """A small ``.env`` reader: ``KEY=value`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno}: expected KEY=value")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# Environment variables that belong to other parts of the program and are not settings.
_NOT_SETTINGS = frozenset({"TRADECTL_VAULT_PASSPHRASE", "TRADECTL_VAULT_KEY", "TRADECTL_VAULT_NEW_PASSPHRASE",
                           "TRADECTL_VAULT_PASSPHRASE_FILE", "TRADECTL_VAULT_KEY_FILE",
                           "TRADECTL_VAULT_NEW_PASSPHRASE_FILE", "TRADECTL_CONFIG"})


def _decode(name: str, value: str) -> Any:
    """Lists and tables arrive as JSON text; everything else is left to the field's validation."""
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"environment variable {name}: invalid JSON ({exc.msg})") from None
    return value


def _secret_file_variables() -> frozenset[str]:
    """``TRADECTL_<SECRET>_FILE`` for every secret setting: resolved by core.settings.secrets, not here. Any
    other name ending in ``_FILE`` is a setting like the rest (``TRADECTL_LOGGING__FILE``)."""
    from core.settings.secrets import FILE_SUFFIX, env_var_name, secret_paths

    return frozenset(env_var_name(name) + FILE_SUFFIX for name in secret_paths(Settings))


def _env_layer(env: Mapping[str, str], origin: dict[tuple[str, ...], str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    secret_files = _secret_file_variables()
    for name, value in env.items():
        if name == "DATABASE_URL":
            path = ["database", "url"]
        elif name.upper().startswith(ENV_PREFIX) and name.upper() not in _NOT_SETTINGS:
            if name.upper() in secret_files:
                continue
            path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
            if not all(path):
                raise ConfigError(f"environment variable {name}: empty path segment")
        else:
            continue
        _set_path(layer, path, _decode(name, value))
        origin[tuple(path)] = f"environment variable {name}"
    return layer


def _file_origins(data: Mapping[str, Any], prefix: tuple[str, ...], source: str,
                  origin: dict[tuple[str, ...], str]) -> None:
    for key, value in data.items():
        path = (*prefix, key)
        origin[path] = f"{source} key {'.'.join(path)}"
        if isinstance(value, Mapping):
            _file_origins(value, path, source, origin)


def load_settings(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_path: Path | None = Path(".env"),
    overrides: Mapping[str, Any] | None = None,
    commands: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings or raise :class:`ConfigError` naming the offending key.

    ``commands`` (every command name and alias -> the command's name, from the registry) is given
    where the service is assembled: it checks the chat settings (command names, traders' pairs), and
    aliases come back as the command's name.
    """
    env = dict(os.environ if env is None else env)
    origin: dict[tuple[str, ...], str] = {}
    data: dict[str, Any] = {}

    path = config_path
    if path is None and env.get("TRADECTL_CONFIG"):
        path = Path(env["TRADECTL_CONFIG"])
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        _file_origins(data, (), str(path), origin)

    # strategy parameters written by `tradectl tune` live in their own file, never in the user's
    from core.settings.overlay import OverlayError, apply_overlay

    try:
        data = apply_overlay(data, env, origin)
    except OverlayError as exc:
        raise ConfigError(str(exc)) from None

    if dotenv_path is not None and dotenv_path.is_file():
        dotenv = {k: v for k, v in read_dotenv(dotenv_path).items() if k not in env}
        data = _merge(data, _env_layer(dotenv, origin))
    data = _merge(data, _env_layer(env, origin))
    if overrides:
        data = _merge(data, overrides)

    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin)) from None
    settings._origins = origin

    from core.settings.config_checks import canonical_commands, chat_problems, reference_problems

    problems = reference_problems(settings)
    if commands is not None:
        problems += chat_problems(settings, commands)
    if problems:
        raise ConfigError("; ".join(_with_origin(p.message, _origin_of(origin, p.path)) for p in problems))
    return canonical_commands(settings, commands) if commands is not None else settings


def _origin_of(origin: Mapping[tuple[str, ...], str], path: tuple[str, ...]) -> str | None:
    """Where ``path`` or the nearest enclosing key came from (a list of tables has one origin)."""
    for i in range(len(path), 0, -1):
        if path[:i] in origin:
            return origin[path[:i]]
    return None


def _with_origin(message: str, where: str | None) -> str:
    return f"{message} (from {where})" if where else message


def setting_origin(settings: Settings, path: tuple[str, ...]) -> str:
    """Where a setting came from: ``environment variable X``, ``<file> key a.b``, or ``default``."""
    return _origin_of(settings._origins, path) or "default"


def _explain(exc: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "(settings)"
        if err["type"] == "extra_forbidden":
            msg = f"unknown setting {key!r}"
        else:
            msg = f"{key}: {err['msg']}"
        lines.append(_with_origin(msg, _origin_of(origin, loc)))
    return "; ".join(lines)


def redacted_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data: every ``SecretStr`` shown as ``**********`` (or empty),
    every secret inside a URL as ``***`` (:func:`core.settings.url_secrets.redact_url`)."""
    from core.settings.url_secrets import find_url_secrets, redact_dump

    data: dict[str, Any] = redact_dump(settings.model_dump(mode="json"), find_url_secrets(settings))
    return data


def collect_settings_secrets(model: BaseModel) -> list[str]:
    """Every secret value in the settings, for the log redaction: ``SecretStr`` values and the
    secret parts of URLs (database password, webhook URLs, credentials in a query)."""
    from core.settings.url_secrets import find_url_secrets

    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    for secret in find_url_secrets(model):
        found.extend(secret.parts)
    return found
