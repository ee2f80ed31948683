"""The Telegram adapter: polling (leader work), rendering, paced sending, and alerts.

- :class:`TelegramPolling` — a component on every replica (connected, idle); the leader election
  calls ``lead(epoch)`` / ``step_down()``; translates updates into dispatcher calls and replies into
  messages.
- :func:`render_telegram` — a :class:`~bot.reply.Reply` as HTML messages, photos and inline keyboards.
- :class:`TelegramAlertSender` — the alert sender for ``telegram`` destinations (any replica).

See docs/telegram.md for setting up a bot and docs/deployment.md for running replicas.

The names are loaded on first use: the service imports only the part it wires (an alert sender
without its adapter), and a renderer can be imported without the platform's client library.
python-telegram-bot imports cryptography whenever it is installed (the vault needs it), only to decrypt
Telegram Passport data, which the service never asks for: loaded through these names, it takes its
"passport extra not installed" path and the service does not pay about 8 MiB for it (until a vault or a
Coinbase venue loads cryptography anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.runtime import lazy_exports

if TYPE_CHECKING:
    from bot.platforms.telegram.adapter import TelegramPolling
    from bot.platforms.telegram.alerts import TelegramAlertSender
    from bot.platforms.telegram.api import AdmissionQueue
    from bot.platforms.telegram.render import PhotoMessage, TextMessage, render_telegram
    from bot.platforms.telegram.send import ChatSender

__all__ = ["AdmissionQueue", "ChatSender", "PhotoMessage", "TelegramAlertSender", "TelegramPolling", "TextMessage",
           "render_telegram"]

_HOME = {
    "adapter": ("TelegramPolling",),
    "alerts": ("TelegramAlertSender",),
    "api": ("AdmissionQueue",),
    "render": ("PhotoMessage", "TextMessage", "render_telegram"),
    "send": ("ChatSender",),
}


__getattr__ = lazy_exports(__name__, _HOME, absent=("cryptography",))
