"""Bot API clients built from the settings: the polling application and the plain bot for alerts.

Both honour ``telegram.base_url`` (a local Bot API server, or the fake one in tests). The
application gets PTB's ``AIORateLimiter`` for the overall and per-group limits with no retries of
its own (a 429 is retried per chat by :class:`~bot.telegram.send.ChatSender`, which blocks only that
chat), an update queue that confirms updates only once handled, no job queue, and strictly
sequential update handling (the confirmation order depends on it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Bot, Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from core.settings_models import TelegramSettings

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class HandledQueue(asyncio.Queue[object]):
    """The queue between PTB's updater and application, returning from ``put`` only once the update
    has been handled, so the updater asks for the next offset (confirming it) only after that.

    :meth:`hold` keeps the update being handled unconfirmed: the updater's ``put`` never returns
    and the update is delivered again when polling restarts, here or on the next leader.
    """

    def __init__(self) -> None:
        super().__init__()
        self._released = asyncio.Event()
        self._released.set()

    async def put(self, item: object) -> None:
        await super().put(item)
        await self.join()
        if isinstance(item, Update):
            await self._released.wait()

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()


class _RetryAfterIsHandled(logging.Filter):
    """AIORateLimiter logs every 429 it passes on as an error with a traceback; ChatSender waits and
    sends the message again, so those records are noise (other records pass)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Rate limit hit after maximum of 0 retries")


_RATE_LOG = logging.getLogger("telegram.ext.AIORateLimiter")


def file_url(base_url: str) -> str:
    """``http://host/bot`` -> ``http://host/file/bot`` (how Bot API servers lay out file downloads)."""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else base_url


def _token(settings: TelegramSettings) -> str:
    if settings.token is None or not settings.token.get_secret_value():
        raise ValueError("telegram needs a bot token (telegram.token)")
    return settings.token.get_secret_value()


def build_application(settings: TelegramSettings) -> AnyApplication:
    if not any(isinstance(f, _RetryAfterIsHandled) for f in _RATE_LOG.filters):
        _RATE_LOG.addFilter(_RetryAfterIsHandled())
    s = settings
    builder = (ApplicationBuilder().token(_token(s))
               .rate_limiter(AIORateLimiter(overall_max_rate=s.overall_rate_per_s, overall_time_period=1,
                                            group_max_rate=s.group_rate_per_min, group_time_period=60,
                                            max_retries=0))
               .update_queue(HandledQueue()).concurrent_updates(False).job_queue(None)
               .connect_timeout(5).read_timeout(10).write_timeout(10).pool_timeout(5)
               .get_updates_connect_timeout(5).get_updates_read_timeout(5).get_updates_pool_timeout(5))
    if s.base_url:
        builder = builder.base_url(s.base_url).base_file_url(file_url(s.base_url))
    return builder.build()


def build_bot(settings: TelegramSettings, timeout_s: float = 10.0) -> Bot:
    kwargs: dict[str, Any] = {"base_url": settings.base_url, "base_file_url": file_url(settings.base_url)} \
        if settings.base_url else {}
    request = HTTPXRequest(connect_timeout=5, read_timeout=timeout_s, write_timeout=timeout_s, pool_timeout=5)
    return Bot(_token(settings), request=request, **kwargs)
