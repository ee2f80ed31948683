"""Assembly of the chat command core: the one function the application bootstrap calls.

``build_dispatcher`` wires the registry, access control, confirmations, audit log and processed
updates around a :class:`~core.trading.views.TradingService`; ``build_console`` adds the console chat when
the settings and the terminal allow it. Platform adapters (Telegram, Discord, Slack) take the same
dispatcher.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.audit import AuditLog
from bot.commands import build_registry
from bot.confirmations import ConfirmationStore
from bot.dispatcher import Dispatcher, DispatchObserver
from bot.identity import AccessControl
from bot.platforms.console import ConsoleChat, open_stdin_reader
from bot.registry import Registry
from bot.updates import ProcessedUpdates
from core.settings import ChatSettings
from core.trading import Event, TradingService
from exchanges.clock import Clock, SystemClock
from persistence.db import Database


def build_dispatcher(
    db: Database,
    services: TradingService,
    settings: ChatSettings,
    *,
    clock: Clock | None = None,
    registry: Registry | None = None,
    redact: Callable[[str], str] | None = None,
    instance_id: str = "",
    timezone: str = "UTC",
    observer: DispatchObserver | None = None,
) -> Dispatcher:
    """``timezone`` (service.timezone) is the zone every time in a reply is shown in; ``observer`` (the
    metrics, when enabled) counts attempts, dispatch times and confirmation outcomes."""
    clock = clock or SystemClock()
    return Dispatcher(
        registry or build_registry(),
        services,
        AccessControl(db, settings, clock),
        ConfirmationStore(db, clock, observer),
        AuditLog(db, clock, redact),
        settings,
        clock,
        updates=ProcessedUpdates(db, clock, instance_id),
        timezone=timezone,
        observer=observer,
    )


def stdin_is_readable(stream: TextIO | None = None) -> bool:
    """True for a terminal, a pipe or a regular file on stdin; False when stdin is closed or /dev/null."""
    stream = stream if stream is not None else sys.stdin
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    if stream.isatty():
        return True
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def build_console(
    dispatcher: Dispatcher,
    settings: ChatSettings,
    *,
    events: asyncio.Queue[Event] | None = None,
    on_eof: Callable[[], None] | None = None,
    image_dir: Path | None = None,
    label: str = "",
) -> ConsoleChat | None:
    """The console chat on this process's stdin/stdout, or None when ``chat.console`` and the terminal say no.

    ``on_eof`` lets ``tradectl run --exit-after-input`` stop the service once piped input ends;
    images in replies (``/chart``) are saved under ``image_dir``; ``label`` (``trading.paper_label``) heads
    each event line as it heads the other platforms' alerts.
    """
    if settings.console == "off" or (settings.console == "auto" and not stdin_is_readable()):
        return None
    return ConsoleChat(dispatcher, reader_factory=open_stdin_reader, out=sys.stdout, events=events, on_eof=on_eof,
                       prompt=sys.stdin.isatty(), image_dir=image_dir, label=label)
