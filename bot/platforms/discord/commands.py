"""Slash commands generated from the command registry, and their options turned back into a command line.

The definitions are plain JSON for Discord's bulk-overwrite endpoint, built by a pure function, so
the registry stays the one source of names, arguments, bounds and help. We set no
``default_member_permissions``: a guild admin can change those, so who may run what is decided by
our own roles in the dispatcher, never by Discord.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.identity import Role
from bot.platforms.discord.autocomplete import suggests
from bot.registry import MAX_TEXT_CHARS, MAX_TOKEN_CHARS, ArgSpec, CommandSpec, Registry

STRING, INTEGER = 3, 4
GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1
GUILD_INSTALL = 0
_KIND_HELP = {
    "pair": "A pair written BASE/QUOTE, e.g. BTC/USD",
    "user": "A stable user id (same platform), or platform:id",
    "role": "viewer, trader or admin",
    "text": "Free text",
    "int": "A whole number",
}


def _description(text: str, fallback: str) -> str:
    text = " ".join((text or fallback).split())
    return text if len(text) <= 100 else text[:99] + "…"


def option(param: ArgSpec) -> dict[str, Any]:
    """One registry argument as a Discord option: integers keep their bounds, choices become choices,
    pairs and jobs are suggested as the user types (autocomplete)."""
    help_text = _description(param.help, _KIND_HELP.get(param.kind, param.name))
    opt: dict[str, Any] = {"name": param.name, "description": help_text, "required": param.required}
    if param.kind == "int":
        opt["type"] = INTEGER
        if param.min is not None:
            opt["min_value"] = param.min
        if param.max is not None:
            opt["max_value"] = param.max
        return opt
    opt["type"] = STRING
    choices: Iterable[str] = ()
    if param.kind == "choice":
        choices = param.choices
    elif param.kind == "role":
        choices = [r.label for r in Role if r is not Role.NONE]
    if choices:
        opt["choices"] = [{"name": c, "value": c} for c in list(choices)[:25]]
    else:
        opt["max_length"] = MAX_TEXT_CHARS if param.kind == "text" else MAX_TOKEN_CHARS
        if suggests(param):
            opt["autocomplete"] = True
    return opt


def slash_command(spec: CommandSpec, *, contexts: tuple[int, ...] = (GUILD_CONTEXT,)) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": 1,  # CHAT_INPUT
        "description": _description(spec.help, spec.name),
        "options": [option(p) for p in spec.params],
        "contexts": list(contexts),
        "integration_types": [GUILD_INSTALL],
    }


def slash_commands(registry: Registry, *, contexts: tuple[int, ...] = (GUILD_CONTEXT,)) -> list[dict[str, Any]]:
    """Every registered command, in declaration order. Aliases are left out: one name per command in
    the menu, as /help lists them."""
    return [slash_command(spec, contexts=contexts) for spec in registry]


def _token(param: ArgSpec, value: Any) -> str:
    if isinstance(value, Role):
        return value.label
    return " ".join(str(value).split()) if param.kind == "text" else str(value)


def command_line(name: str, spec: CommandSpec | None, options: Iterable[Mapping[str, Any]]) -> str:
    """``/name arg1 arg2`` from an interaction's options, in the registry's argument order.

    Discord lets a user fill a later optional option and skip an earlier one; the skipped one is then
    given its default so the positions stay right. The dispatcher parses and validates the line as it
    would a typed message, so nothing here decides what is allowed.
    """
    parts = ["/" + name]
    if spec is None:
        return parts[0]
    given = {str(o.get("name")): o.get("value") for o in options if "value" in o}
    params = spec.params
    for i, param in enumerate(params):
        if param.name in given and given[param.name] is not None:
            parts.append(_token(param, given[param.name]))
            continue
        if not any(q.name in given for q in params[i + 1:]):
            break
        if param.default is None:
            break  # cannot keep positions; the dispatcher will explain the usage
        parts.append(_token(param, param.default))
    return " ".join(p for p in parts if p)
