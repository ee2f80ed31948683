"""Checks that need more than one field: names that must refer to something that exists.

A security list with a typo fails open: ``two_person_commands = ["kil"]`` protects nothing, a
``trader_pairs`` pair nobody trades restricts nothing a trader notices, an alert target that is not a
channel id is found only when the first alert bounces. Each finding names the key and the bad value.

Command names are checked against the command registry, which lives in ``bot/`` and which the
settings may not import: the caller passes the names in (``commands``: every name and alias ->
the command's name); without it only the spelling is checked (see :mod:`core.settings.settings_models`).
The ids' formats are checked by the models themselves.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel

from core.settings.settings_models import (
    CHAT_EXAMPLES,
    CHAT_ID_FORMATS,
    TIMEFRAMES,
    ChatSettings,
    CommandNames,
    DatabaseSettings,
    NotifySettings,
    StrategySettings,
    TradingSettings,
)


class CheckedSettings(Protocol):
    """The sections these checks read: :class:`core.settings.config.Settings`, which calls them (and so is
    not imported here)."""

    @property
    def trading(self) -> TradingSettings: ...
    @property
    def chat(self) -> ChatSettings: ...
    @property
    def notify(self) -> NotifySettings: ...
    @property
    def strategies(self) -> StrategySettings: ...
    @property
    def database(self) -> DatabaseSettings: ...


_Model = TypeVar("_Model", bound=BaseModel)

_COMMAND_NAMES_CHECK = next(m for m in getattr(CommandNames, "__metadata__", ()) if isinstance(m, AfterValidator))
_TELEGRAM_CHANNEL_RE = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{4,31}$")  # a public channel's @username
_WEBHOOK_PLATFORMS = ("discord", "slack")


@dataclass(frozen=True)
class Problem:
    """One bad setting: ``path`` is the key as a tuple (for its origin), ``message`` starts with it."""

    path: tuple[str, ...]
    message: str


def command_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of every setting that lists command names (declared with ``CommandNames``)."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if any(m is _COMMAND_NAMES_CHECK for m in info.metadata):
            yield path
        elif isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from command_fields(info.annotation, path)


def _get(model: BaseModel, path: tuple[str, ...]) -> Any:
    value: Any = model
    for part in path:
        value = getattr(value, part)
    return value


def _replace(model: BaseModel, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return model.model_copy(update={path[0]: value})
    return model.model_copy(update={path[0]: _replace(getattr(model, path[0]), path[1:], value)})


def chat_problems(settings: CheckedSettings, commands: Mapping[str, str]) -> list[Problem]:
    """What the chat service needs: every listed command name is a command (or one of its aliases),
    every pair a trader is limited to is traded.

    Checked where the service is assembled (``run``, ``config check``), not by every settings load:
    ``tradectl backtest --pair ETH/USD`` replaces ``trading.pairs`` and runs no chat at all.
    """
    if not isinstance(settings, BaseModel):
        raise TypeError("the settings to check are a pydantic model: their command fields are declared on it")
    problems = []
    known = sorted(set(commands.values()))
    for path in command_fields(type(settings)):
        for name in _get(settings, path):
            if name not in commands:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; commands: {', '.join(known)}"
                problems.append(Problem(path, f"{'.'.join(path)}: {name!r} is not a command{hint}"))
    traded = settings.trading.pairs
    for key, pairs in settings.chat.trader_pairs.items():
        for pair in pairs:
            if pair not in traded:
                problems.append(Problem(("chat", "trader_pairs", key),
                                        f"chat.trader_pairs.{key}: {pair!r} is not one of trading.pairs "
                                        f"({', '.join(traded)})"))
    return problems


def canonical_commands(settings: _Model, commands: Mapping[str, str]) -> _Model:
    """Aliases replaced by the command's own name (``start`` -> ``help``): the dispatcher compares names."""
    for path in command_fields(type(settings)):
        names = _get(settings, path)
        canonical = tuple(dict.fromkeys(commands.get(n, n) for n in names))
        if canonical != names:
            settings = _replace(settings, path, canonical)
    return settings


def reference_problems(settings: CheckedSettings) -> list[Problem]:
    """Checks every settings load makes: alert targets, the database URL."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, dest in enumerate(settings.notify.destinations):
        path = ("notify", "destinations", str(index))
        where = f"notify.destinations[{dest.name}]"
        if dest.name in seen:
            problems.append(Problem(path, f"{where}: the name {dest.name!r} is used twice"))
        seen.add(dest.name)
        bad = _target_problem(dest.platform, dest.target)
        if bad:
            problems.append(Problem(path, f"{where}.target: {bad}"))
    higher = settings.strategies.higher_timeframe
    if higher is not None:
        base_s, higher_s = settings.trading.timeframe_s, TIMEFRAMES[higher]
        if higher_s <= base_s or higher_s % base_s:
            problems.append(Problem(("strategies", "higher_timeframe"),
                                    f"strategies.higher_timeframe: {higher!r} must be longer than trading.timeframe "
                                    f"({settings.trading.timeframe}) and a multiple of it"))
    bad_url = _database_url_problem(settings.database.url)
    if bad_url:
        problems.append(Problem(("database", "url"), f"database.url: {bad_url}"))
    return problems


def _target_problem(platform: str, target: str) -> str | None:
    if platform == "console":
        return None if target == "" else f"{_shown(target)} must be empty for the console"
    if platform in _WEBHOOK_PLATFORMS and target.startswith(("https://", "http://")):
        return None  # an incoming webhook (its URL is a secret: never echoed)
    if CHAT_ID_FORMATS[platform].match(target) or (platform == "telegram" and _TELEGRAM_CHANNEL_RE.match(target)):
        return None
    kinds = {"telegram": "a chat id or a public channel's @username",
             "discord": "a channel id or an incoming-webhook URL",
             "slack": "a channel id or an incoming-webhook URL"}
    return f"{_shown(target)} is not {kinds[platform]}, such as {CHAT_EXAMPLES[platform]!r}"


def _shown(target: str) -> str:
    """A bad target as it can be shown: anything URL-like may carry a secret and is cut at its host."""
    if "://" in target:
        scheme, _, rest = target.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return repr(f"{scheme}://{host}/...")
    return repr(target)


def _database_url_problem(url: str) -> str | None:
    """The scheme and shape, before anything connects (the message never repeats the URL: it may
    hold a password)."""
    from sqlalchemy.exc import ArgumentError

    from persistence.db import DatabaseError, normalize_url

    try:
        normalize_url(url)
    except DatabaseError as exc:
        return str(exc)
    except ArgumentError:
        return "not a database URL: write sqlite:///path/to/file.db or postgresql://user:password@host/db"
    return None
