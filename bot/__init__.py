"""The chat command core: one registry, one dispatcher, thin platform adapters.

Adapters (console here; Telegram, Discord and Slack in their subpackages) turn platform input into
:meth:`Dispatcher.handle_text` / :meth:`Dispatcher.handle_callback` calls and render the returned
:class:`Reply`. Everything else — roles, confirmations, audit, rate limits — lives behind those
two calls.

The names below are loaded on first use: importing one module of the package (``bot.format``, the
registry for ``tradectl config check``) does not load the dispatcher, the console and every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.runtime import lazy_exports

if TYPE_CHECKING:
    from bot.app import build_console, build_dispatcher
    from bot.audit import AuditLog, AuditRecord
    from bot.commands import build_registry
    from bot.confirmations import ConfirmationStore
    from bot.context import CommandContext
    from bot.dispatcher import Dispatcher
    from bot.errors import CommandError, UsageError
    from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT, AccessControl, Actor, ChatRef, Role
    from bot.platforms.console import ConsoleChat, render_console
    from bot.registry import CommandSpec, Registry, arg, command
    from bot.reply import Block, Button, Buttons, Image, KeyValues, Reply, Table, Text
    from bot.updates import ProcessedUpdates

_HOME = {
    "app": ("build_console", "build_dispatcher"),
    "audit": ("AuditLog", "AuditRecord"),
    "commands": ("build_registry",),
    "confirmations": ("ConfirmationStore",),
    "context": ("CommandContext",),
    "dispatcher": ("Dispatcher",),
    "errors": ("CommandError", "UsageError"),
    "identity": ("CONSOLE_ACTOR", "CONSOLE_CHAT", "AccessControl", "Actor", "ChatRef", "Role"),
    "platforms.console": ("ConsoleChat", "render_console"),
    "registry": ("CommandSpec", "Registry", "arg", "command"),
    "reply": ("Block", "Button", "Buttons", "Image", "KeyValues", "Reply", "Table", "Text"),
    "updates": ("ProcessedUpdates",),
}

__all__ = [
    "CONSOLE_ACTOR", "CONSOLE_CHAT", "AccessControl", "Actor", "AuditLog", "AuditRecord", "Block", "Button",
    "Buttons", "ChatRef", "CommandContext", "CommandError", "CommandSpec", "ConfirmationStore",
    "ConsoleChat", "Dispatcher", "Image", "KeyValues", "ProcessedUpdates", "Registry", "Reply", "Role",
    "Table", "Text", "UsageError", "arg", "build_console", "build_dispatcher", "build_registry",
    "command", "render_console",
]


__getattr__ = lazy_exports(__name__, _HOME)
