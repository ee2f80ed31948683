"""Alert delivery: the outbox dispatcher, rate limits, and the senders each platform provides."""

from bot.notify.dispatcher import OutboxDispatcher
from bot.notify.senders import AlertMessage, DeliveryError, Sender, WebhookSender

__all__ = ["AlertMessage", "DeliveryError", "OutboxDispatcher", "Sender", "WebhookSender"]
