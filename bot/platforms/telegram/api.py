"""Bot API clients built from the settings: the polling application and the plain bot for alerts.

Both honour ``telegram.base_url`` (a local Bot API server, or the fake one in tests). The
application gets PTB's ``AIORateLimiter`` for the overall and per-group limits with no retries of
its own (a 429 is retried per chat by :class:`~bot.platforms.telegram.send.ChatSender`, which blocks only that
chat), no job queue, an :class:`AdmissionQueue` that hands each fetched update to the adapter's
chat lanes instead of PTB's handlers, and a :class:`PollingRequest` for ``getUpdates``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, Update
from telegram._utils.types import JSONDict
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest, RequestData

from core.settings import TelegramSettings

AnyApplication = Application[Any, Any, Any, Any, Any, Any]
log = logging.getLogger("tradectl.bot.telegram")


class AdmissionQueue(asyncio.Queue[object]):
    """The queue between PTB's updater and application. An update is not queued for PTB's handlers:
    ``put`` hands it to ``admit`` (the adapter queues it on its chat lanes) and returns once admitted.

    The updater confirms a batch to Telegram with its next ``getUpdates``, so what ``put`` does
    not return from stays unconfirmed: ``admit`` answering False (not sure to be the leader) holds
    the update until :meth:`release`, and it is delivered again when polling restarts, here or on
    the next leader. Anything else (PTB's stop signal) passes through to the application.
    """

    def __init__(self) -> None:
        super().__init__()
        self._released = asyncio.Event()
        self._released.set()
        self.admit: Callable[[Update], Awaitable[bool]] | None = None

    async def put(self, item: object) -> None:
        admit = self.admit
        if not isinstance(item, Update) or admit is None:
            await super().put(item)
            return
        if not await admit(item):
            self.hold()
        await self._released.wait()

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()


class PollingRequest(HTTPXRequest):
    """The HTTP client for ``getUpdates`` only (PTB keeps a separate one for it).

    - Each ``getUpdates`` confirms what the previous one returned, so ``before_poll`` runs first: the
      adapter waits there (briefly) for the fetched updates to be handled.
    - Each answer is reported to ``on_poll`` (None: fine, else the error), for the component state.
    - ``on_batch`` hears how many updates each answer held (a full batch: more are waiting).
    - ``screen`` sees each update as JSON before PTB builds objects from it (about 0.1 ms each): one
      it answers False for (a text message the adapter reads from the JSON itself, a press the chat
      lanes would drop anyway) is replaced by its bare ``update_id``, so a thousand queued messages
      cost little more than their download.
    - An update python-telegram-bot cannot read would make it fetch the same batch forever (it logs
      and retries without confirming). After a batch that was not confirmed, every update of the
      next answer is checked, and one that cannot be read is replaced by its bare ``update_id``:
      skipped and confirmed, with an error in the log, instead of stopping every later update.
    """

    def __init__(self, *, before_poll: Callable[[], Awaitable[None]] | None = None,
                 on_poll: Callable[[BaseException | None], None] | None = None,
                 screen: Callable[[JSONDict], bool] | None = None,
                 on_batch: Callable[[int], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.before_poll = before_poll
        self.on_poll = on_poll
        self.screen = screen
        self.on_batch = on_batch
        self._last_ids: tuple[int, ...] = ()
        self._check = False
        self.skipped: list[int] = []

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        polling = url.endswith("/getUpdates")
        if polling:
            offset = (request_data.parameters.get("offset") if request_data is not None else None) or 0
            self._check = bool(self._last_ids) and isinstance(offset, int) and offset <= max(self._last_ids)
            if self.before_poll is not None:
                await self.before_poll()
        try:
            code, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        except Exception as exc:
            if polling and self.on_poll is not None:
                self.on_poll(exc)
            raise
        if polling and self.on_poll is not None and 200 <= code <= 299:
            self.on_poll(None)
        return code, payload

    # PTB declares it a staticmethod; this override needs the instance (its screen and checks)
    def parse_json_payload(self, payload: bytes) -> JSONDict:  # type: ignore[override]
        data = HTTPXRequest.parse_json_payload(payload)
        result = data.get("result") if isinstance(data, dict) else None
        if isinstance(result, list) and result and all(isinstance(u, dict) for u in result):
            if self.screen is not None:
                data["result"] = result = [self._screened(u) for u in result]
            if self._check:
                data["result"] = result = [r for r in (self._readable(u) for u in result) if r is not None]
            ids = tuple(u["update_id"] for u in result if isinstance(u.get("update_id"), int))
            self._last_ids = ids
        if self.on_batch is not None:
            self.on_batch(len(result) if isinstance(result, list) else 0)
        return data

    def _screened(self, update: JSONDict) -> JSONDict:
        assert self.screen is not None
        try:
            keep = self.screen(update)
        except Exception:  # noqa: BLE001 - cannot tell: let PTB read it and admission decide
            keep = True
        return update if keep or not isinstance(update.get("update_id"), int) else {"update_id": update["update_id"]}

    def _readable(self, update: JSONDict) -> JSONDict | None:
        try:
            Update.de_json(update, None)
            return update
        except Exception as exc:  # noqa: BLE001 - whatever PTB chokes on, skip that one update
            update_id = update.get("update_id")
            log.error("telegram: update %s cannot be read (%s: %s); skipped", update_id, type(exc).__name__, exc)
            if isinstance(update_id, int):
                self.skipped.append(update_id)
                return {"update_id": update_id}
            return None


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


def _client_options(tls: ssl.SSLContext | None) -> dict[str, Any]:
    """httpx options of a Bot API client: ``tls`` shared (each client loading the CA bundle itself costs
    about 0.8 MiB), or None for httpx's own."""
    return {"httpx_kwargs": {"verify": tls}} if tls is not None else {}


def build_application(settings: TelegramSettings, polling: PollingRequest | None = None,
                      tls: ssl.SSLContext | None = None) -> AnyApplication:
    """The polling application; ``tls``: the TLS context its clients share (None: httpx's default each)."""
    if not any(isinstance(f, _RetryAfterIsHandled) for f in _RATE_LOG.filters):
        _RATE_LOG.addFilter(_RetryAfterIsHandled())
    s = settings
    polling = polling or polling_request(tls=tls)
    # what ApplicationBuilder would build for the other methods (256 connections), with the TLS context
    request = HTTPXRequest(connection_pool_size=256, connect_timeout=5, read_timeout=10, write_timeout=10,
                           pool_timeout=5, **_client_options(tls))
    builder = (ApplicationBuilder().token(_token(s))
               .rate_limiter(AIORateLimiter(overall_max_rate=s.overall_rate_per_s, overall_time_period=1,
                                            group_max_rate=s.group_rate_per_min, group_time_period=60,
                                            max_retries=0))
               .update_queue(AdmissionQueue()).job_queue(None)
               .request(request).get_updates_request(polling))
    if s.base_url:
        builder = builder.base_url(s.base_url).base_file_url(file_url(s.base_url))
    return builder.build()


def polling_request(before_poll: Callable[[], Awaitable[None]] | None = None,
                    on_poll: Callable[[BaseException | None], None] | None = None,
                    screen: Callable[[JSONDict], bool] | None = None,
                    on_batch: Callable[[int], None] | None = None,
                    tls: ssl.SSLContext | None = None) -> PollingRequest:
    """The ``getUpdates`` client: one connection, PTB's usual timeouts for polling."""
    return PollingRequest(before_poll=before_poll, on_poll=on_poll, screen=screen, on_batch=on_batch,
                          connection_pool_size=1, connect_timeout=5, read_timeout=5, write_timeout=5, pool_timeout=5,
                          **_client_options(tls))


def build_bot(settings: TelegramSettings, timeout_s: float = 10.0, tls: ssl.SSLContext | None = None) -> Bot:
    """A plain bot (alerts); ``tls``: the TLS context its clients share (None: httpx's default each)."""
    kwargs: dict[str, Any] = {"base_url": settings.base_url, "base_file_url": file_url(settings.base_url)} \
        if settings.base_url else {}
    request = HTTPXRequest(connect_timeout=5, read_timeout=timeout_s, write_timeout=timeout_s, pool_timeout=5,
                           **_client_options(tls))
    # the client PTB would add for getUpdates (never called here), built with the same TLS context
    updates = HTTPXRequest(connection_pool_size=1, **_client_options(tls))
    return Bot(_token(settings), request=request, get_updates_request=updates, **kwargs)
