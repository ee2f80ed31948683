"""The chat command core: one registry, one dispatcher, thin platform adapters.

Adapters (console here; Telegram, Discord and Slack in their subpackages) turn platform input into
:meth:`Dispatcher.handle_text` / :meth:`Dispatcher.handle_callback` calls and render the returned
:class:`Reply`. Everything else — roles, confirmations, audit, rate limits — lives behind those
two calls.
"""

from bot.app import build_console, build_dispatcher
from bot.audit import AuditLog, AuditRecord
from bot.commands import build_registry
from bot.confirmations import ConfirmationStore
from bot.console import ConsoleChat, render_console
from bot.context import Clock, CommandContext, SystemClock
from bot.dispatcher import Dispatcher
from bot.errors import CommandError, UsageError
from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT, AccessControl, Actor, ChatRef, Role
from bot.registry import CommandSpec, Registry, arg, command
from bot.reply import Block, Button, Buttons, Image, KeyValues, Reply, Table, Text
from bot.updates import ProcessedUpdates

__all__ = [
    "CONSOLE_ACTOR", "CONSOLE_CHAT", "AccessControl", "Actor", "AuditLog", "AuditRecord", "Block", "Button",
    "Buttons", "ChatRef", "Clock", "CommandContext", "CommandError", "CommandSpec", "ConfirmationStore",
    "ConsoleChat", "Dispatcher", "Image", "KeyValues", "ProcessedUpdates", "Registry", "Reply", "Role",
    "SystemClock", "Table", "Text", "UsageError", "arg", "build_console", "build_dispatcher", "build_registry",
    "command", "render_console",
]
