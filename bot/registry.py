"""One registry of commands: declared once, it drives parsing, permissions, help and platform menus.

A command is a plain async function ``(ctx, args) -> Reply`` decorated with :func:`command`. Its
arguments are a frozen dataclass; the field types (``int``, ``str``, ``Literal[...]``, ``Role``)
and :func:`arg` metadata (bounds, kind ``pair``/``user``/``text``) give typed parsing with usage
errors, and the usage line is generated from them so it cannot drift from the code.

The decorator only attaches a :class:`CommandSpec` to the function; :meth:`Registry.from_modules`
collects them. There is no global registry, so tests and deployments can assemble their own.

Each command names the ``group`` it belongs to by purpose ("Trading", "Reports"); /help shows one
section per group (:meth:`Registry.groups`), in the order the registry first meets them.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.context import CommandContext
from bot.errors import UsageError
from bot.identity import Role
from bot.prompts import PromptFn
from bot.reply import Reply
from core.settings import ChatSettings

Handler = Callable[[CommandContext, Any], Awaitable[Reply]]
ArgKind = Literal["str", "int", "choice", "pair", "user", "role", "text"]

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # Telegram's rule for command names, the strictest
PAIR_RE = re.compile(r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$")
INT_RE = re.compile(r"^[0-9]{1,9}$")  # ASCII only: int() would accept other scripts' digits
MAX_TOKENS = 16
MAX_TOKEN_CHARS = 100
MAX_TEXT_CHARS = 200
_SPEC_ATTR = "__command_spec__"
OTHER = "Other"  # the group of a command that names none


def arg(default: Any = dataclasses.MISSING, *, help: str = "", min: int | None = None, max: int | None = None,
        kind: ArgKind | None = None) -> Any:
    """Declare an argument field with bounds and an optional kind (``pair``, ``user``, ``text``).

    ``kind="text"`` takes the rest of the line (a free-form reason) and must be the last field. An
    optional choice defaulting to None (``Literal["all"] | None``), not the last field, may be left
    out: a token that is none of its choices goes to the next field (``/audit 5``, ``/audit all 5``).
    """
    meta = {"help": help, "min": min, "max": max, "kind": kind}
    return dataclasses.field(default=default, metadata={"arg": meta})


@dataclass(frozen=True, slots=True)
class ArgSpec:
    name: str
    kind: ArgKind
    required: bool
    default: Any
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    help: str = ""

    def placeholder(self) -> str:
        if self.kind == "choice":
            inner = "|".join(self.choices)
        elif self.kind == "role":
            inner = "viewer|trader|admin"
        else:
            inner = self.name
        if self.kind == "text":
            inner += "..."
        return f"<{inner}>" if self.required else f"[{inner}]"

    def convert(self, token: str) -> Any:
        if self.kind == "int":
            if not INT_RE.match(token):
                raise UsageError(f"{self.name} must be a whole number{self._bounds()}")
            value = int(token)
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise UsageError(f"{self.name} must be a whole number{self._bounds()}")
            return value
        if self.kind == "choice":
            low = token.lower()
            if low not in self.choices:
                raise UsageError(f"{self.name} must be one of {', '.join(self.choices)}")
            return low
        if self.kind == "pair":
            return normalize_pair(token)
        if self.kind == "role":
            try:
                return Role.parse(token)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        return token

    def _bounds(self) -> str:
        if self.min is not None and self.max is not None:
            return f" from {self.min} to {self.max}"
        if self.min is not None:
            return f" of at least {self.min}"
        return ""


def normalize_pair(token: str) -> str:
    """``btc/usd``, ``BTC-USD`` and ``btc_usd`` all mean ``BTC/USD``."""
    pair = token.strip().upper().replace("-", "/").replace("_", "/")
    if not PAIR_RE.match(pair):
        raise UsageError("a pair is written BASE/QUOTE, e.g. BTC/USD")
    return pair


def _arg_specs(args_type: type | None) -> tuple[ArgSpec, ...]:
    if args_type is None:
        return ()
    # typeshed does not declare __dataclass_params__
    if not (dataclasses.is_dataclass(args_type) and args_type.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise TypeError(f"{args_type.__name__} must be a frozen dataclass")
    hints = typing.get_type_hints(args_type)
    specs = []
    for f in dataclasses.fields(args_type):
        meta = f.metadata.get("arg", {})
        hint = hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        kind: ArgKind
        choices: tuple[str, ...] = ()
        if meta.get("kind"):
            kind = meta["kind"]
        elif typing.get_origin(hint) is Literal:
            kind, choices = "choice", tuple(str(c) for c in typing.get_args(hint))
        elif hint is int:
            kind = "int"
        elif hint is Role:
            kind = "role"
        else:
            kind = "str"
        specs.append(ArgSpec(f.name, kind, required, None if required else f.default, choices,
                             meta.get("min"), meta.get("max"), meta.get("help", "")))
    for spec in specs[:-1]:
        if spec.kind == "text":
            raise TypeError(f"{args_type.__name__}.{spec.name}: a text argument must be the last one")
    return tuple(specs)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    role: Role
    confirm: bool
    destructive: bool
    aliases: tuple[str, ...]
    help: str
    usage: str
    args_type: type | None
    params: tuple[ArgSpec, ...]
    mutates: bool = False
    # With ``confirm``: whether these parsed arguments act at all (``/close`` without a pair only lists)
    confirm_when: Callable[[Any], bool] | None = None
    # With ``confirm``: what the confirmation says and checks first (see bot.prompts); None: a generic prompt
    prompt: PromptFn | None = None
    group: str = OTHER  # what it is for, a heading of /help ("Trading"); see Registry.groups

    def synopsis(self) -> str:
        return " ".join([f"/{self.name}", *(p.placeholder() for p in self.params)])

    def usage_text(self) -> str:
        lines = [f"usage: {self.synopsis()}", self.help]
        if self.usage:
            lines.append(self.usage)
        return "\n".join(lines)

    def parse(self, tokens: Sequence[str]) -> Any:
        """Tokens to the command's argument dataclass, or :class:`UsageError` saying what is wrong."""
        takes_text = bool(self.params) and self.params[-1].kind == "text"
        if len(tokens) > MAX_TOKENS and not takes_text:  # a free-form reason is bounded by characters instead
            raise UsageError("too many arguments")
        values: dict[str, Any] = {}
        rest = list(tokens)
        for p in self.params:
            if p.kind == "text":
                text = " ".join(rest)
                rest = []
                if len(text) > MAX_TEXT_CHARS:
                    raise UsageError(f"{p.name} is longer than {MAX_TEXT_CHARS} characters")
                if text:
                    values[p.name] = text
                elif p.required:
                    raise UsageError(f"missing {p.placeholder()}")
                continue
            if not rest:
                if p.required:
                    raise UsageError(f"missing {p.placeholder()}")
                continue
            if (p.kind == "choice" and not p.required and p.default is None and p is not self.params[-1]
                    and rest[0].lower() not in p.choices):
                continue  # an optional word (``/audit all 5``) left out: the token belongs to the next argument
            token = rest.pop(0)
            if len(token) > MAX_TOKEN_CHARS:
                raise UsageError(f"{p.name} is too long")
            values[p.name] = p.convert(token)
        if rest:
            raise UsageError("too many arguments" if self.params else f"/{self.name} takes no arguments")
        return self.args_type(**values) if self.args_type is not None else None

    def asks_confirmation(self, settings: ChatSettings) -> bool:
        """Whether some call of this command asks for confirmation (see :func:`needs_confirmation`)."""
        return needs_confirmation(self, settings)

    def pairs_in(self, parsed: Any) -> tuple[str, ...]:
        """The pair arguments of a parsed call (for per-trader pair limits)."""
        return tuple(getattr(parsed, p.name) for p in self.params
                     if p.kind == "pair" and getattr(parsed, p.name, None))


_ANY_ARGS = object()


def needs_confirmation(spec: CommandSpec, settings: ChatSettings, args: Any = _ANY_ARGS) -> bool:
    """Declared on the command, or added by ``chat.confirm_commands`` / ``chat.two_person_commands``.

    Given the parsed ``args``, a command's ``confirm_when`` may say this call changes nothing (it only
    lists), and then nothing is confirmed."""
    if args is not _ANY_ARGS and spec.confirm_when is not None and not spec.confirm_when(args):
        return False
    return spec.confirm or spec.name in settings.confirm_commands or spec.name in settings.two_person_commands


def command(
    name: str,
    *,
    role: Role = Role.VIEWER,
    confirm: bool = False,
    aliases: Iterable[str] = (),
    help: str,
    usage: str = "",
    args: type | None = None,
    destructive: bool = False,
    mutates: bool | None = None,
    prompt: PromptFn | None = None,
    confirm_when: Callable[[Any], bool] | None = None,
    group: str = OTHER,
) -> Callable[[Handler], Handler]:
    """Declare a chat command.

    ``group`` is the heading /help lists it under, by purpose ("Status & info", "Trading").
    ``destructive`` commands are refused when their message is stale. ``mutates`` (default: trader
    role or above) marks commands that change something; their audit row is written before they run,
    so a crash half-way still leaves a trace. ``prompt`` (with ``confirm``) states what confirming will do
    and may refuse the command before anything is asked (:mod:`bot.prompts`).
    """
    for n in (name, *aliases):
        if not NAME_RE.match(n):
            raise ValueError(f"command name {n!r} must be lowercase letters, digits or _ (at most 32)")

    def decorate(fn: Handler) -> Handler:
        changes = mutates if mutates is not None else (role >= Role.TRADER or destructive)
        spec = CommandSpec(name, fn, role, confirm, destructive, tuple(aliases), help, usage, args, _arg_specs(args),
                           changes, confirm_when, prompt, group.strip() or OTHER)
        setattr(fn, _SPEC_ATTR, spec)
        return fn

    return decorate


class Registry:
    """The set of commands one dispatcher serves."""

    def __init__(self, specs: Iterable[CommandSpec] = ()) -> None:
        self._specs: dict[str, CommandSpec] = {}
        self._names: dict[str, str] = {}
        for spec in specs:
            self.add(spec)

    @classmethod
    def from_modules(cls, *modules: types.ModuleType) -> Registry:
        specs = [getattr(obj, _SPEC_ATTR) for module in modules for obj in vars(module).values()
                 if callable(obj) and hasattr(obj, _SPEC_ATTR)]
        return cls(specs)

    def add(self, command: CommandSpec | Handler) -> None:
        spec: CommandSpec = command if isinstance(command, CommandSpec) else getattr(command, _SPEC_ATTR)
        for n in (spec.name, *spec.aliases):
            if n in self._names:
                raise ValueError(f"command name {n!r} is declared twice")
        self._specs[spec.name] = spec
        for n in (spec.name, *spec.aliases):
            self._names[n] = spec.name

    def get(self, name: str) -> CommandSpec | None:
        canonical = self._names.get(name.lower())
        return self._specs[canonical] if canonical else None

    def __iter__(self) -> typing.Iterator[CommandSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def visible(self, role: Role) -> list[CommandSpec]:
        """Commands this role may run, in declaration order (what /help and platform menus list)."""
        return [s for s in self._specs.values() if s.role <= role]

    def groups(self, role: Role) -> list[tuple[str, list[CommandSpec]]]:
        """The commands this role may run by group, each group in the order the registry first meets it
        and only groups with at least one such command (what /help shows, one section each)."""
        by_group: dict[str, list[CommandSpec]] = {}
        for spec in self.visible(role):
            by_group.setdefault(spec.group, []).append(spec)
        return list(by_group.items())

    def menu(self, role: Role) -> list[tuple[str, str]]:
        """``(name, one-line help)`` pairs for a platform's command menu (Telegram setMyCommands etc.)."""
        return [(s.name, s.help) for s in self.visible(role)]

    def nearest(self, name: str, role: Role) -> str | None:
        """The closest command name this role may run, for "did you mean /status?"."""
        names = [n for n, canonical in self._names.items() if self._specs[canonical].role <= role]
        match = difflib.get_close_matches(name.lower()[:40], names, n=1, cutoff=0.5)
        return self._names[match[0]] if match else None
