"""The Telegram adapter: polling (leader work), rendering, paced sending, and alerts.

- :class:`TelegramPolling` — a component on every replica (connected, idle); the leader election
  calls ``lead(epoch)`` / ``step_down()``; translates updates into dispatcher calls and replies into
  messages.
- :func:`render_telegram` — a :class:`~bot.reply.Reply` as HTML messages, photos and inline keyboards.
- :class:`TelegramAlertSender` — the alert sender for ``telegram`` destinations (any replica).

See docs/telegram.md for setting up a bot and docs/deployment.md for running replicas.
"""

from bot.telegram.adapter import TelegramPolling
from bot.telegram.api import AdmissionQueue
from bot.telegram.alerts import TelegramAlertSender
from bot.telegram.render import PhotoMessage, TextMessage, render_telegram
from bot.telegram.send import ChatSender

__all__ = ["AdmissionQueue", "ChatSender", "PhotoMessage", "TelegramAlertSender", "TelegramPolling", "TextMessage",
           "render_telegram"]
