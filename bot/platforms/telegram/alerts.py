"""Alerts to Telegram chats: the :class:`~bot.notify.senders.Sender` for ``platform = "telegram"``.

Any replica may send (only polling needs the leader); the outbox dispatcher makes sure one replica
serves a destination at a time and owns the pacing and retries. A structured alert goes as HTML (its
title in bold), every piece of its text escaped by :func:`bot.neutral.telegram_html`; anything else
as plain text, with no parse mode. Both are cleaned (:func:`bot.neutral.clean`), so a lone surrogate or
a control character in a reason cannot make every send of the alert fail.
Telegram's answers are translated into
:class:`~bot.notify.senders.DeliveryError`: a 429 carries its ``retry_after``; a chat that does not
exist or has blocked the bot is not ``retryable``.
"""

from __future__ import annotations

import logging
import ssl

from telegram import LinkPreviewOptions
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError

from bot.notify.senders import AlertMessage, DeliveryError, alert_text, telegram_html_text
from bot.platforms.telegram.api import build_bot
from bot.platforms.telegram.render import MAX_CAPTION, MAX_TEXT, units
from bot.platforms.telegram.send import retry_seconds
from core.settings import TelegramSettings

log = logging.getLogger("tradectl.bot.telegram")


def _fit(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 units, cut at a line end when there is one."""
    if units(text) <= limit:
        return text
    cut = text[:limit]
    while units(cut) > limit:
        cut = cut[:-1]
    return cut.rsplit("\n", 1)[0] if "\n" in cut else cut


class TelegramAlertSender:
    platform = "telegram"
    max_chars = MAX_TEXT

    def __init__(self, settings: TelegramSettings, tls: ssl.SSLContext | None = None) -> None:
        self._bot = build_bot(settings, tls=tls)  # tls: shared with the service's other clients
        self._ready = False

    async def send(self, target: str, message: AlertMessage) -> None:
        mode = "HTML" if message.alerts else None  # structured: bold title; every piece of text escaped
        if message.alerts:
            text = telegram_html_text(message, MAX_TEXT, measure=units)
        else:
            text = alert_text(message, MAX_TEXT, measure=units)
        try:
            if not self._ready:
                await self._bot.initialize()
                self._ready = True
            if message.image:
                caption = telegram_html_text(message, MAX_CAPTION, measure=units) if mode else _fit(text, MAX_CAPTION)
                await self._bot.send_photo(target, message.image, caption=caption, parse_mode=mode,
                                           disable_notification=message.silent)
                if caption == text:
                    return
            await self._bot.send_message(target, text if mode else _fit(text, MAX_TEXT), parse_mode=mode,
                                         disable_notification=message.silent,
                                         link_preview_options=LinkPreviewOptions(is_disabled=True))
        except RetryAfter as exc:
            raise DeliveryError("telegram rate limited", retry_after=retry_seconds(exc)) from exc
        except InvalidToken as exc:
            raise DeliveryError("telegram refused the bot token", retryable=False) from exc
        except (BadRequest, Forbidden) as exc:
            raise DeliveryError(f"telegram refused the alert: {exc}", retryable=False) from exc
        except TelegramError as exc:
            raise DeliveryError(f"telegram unreachable: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        if self._ready:
            self._ready = False
            try:
                await self._bot.shutdown()
            except TelegramError:
                log.debug("telegram alert sender: shutdown failed", exc_info=True)
