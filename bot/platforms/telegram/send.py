"""Outgoing messages: in order per chat, within Telegram's limits, and never dropped on a 429.

Telegram tolerates about one message per second per chat (with short bursts), about 30 per second
in total and 20 per minute per group. The application's ``AIORateLimiter`` covers the overall and
per-group limits; it has no limit for private chats, so each chat also gets a token bucket here.
Each chat with something to send has one worker task, so a chat's messages keep their order and
a slow chat never holds up the others; the update loop only queues and never waits for a send.
Replies to the kill lane (``urgent``) go ahead of the chat's other queued messages, so a busy group
still sees KILLED next, and ahead of every chat's messages for the overall limit, so a thousand
"not authorized" answers to a thousand strangers do not hold it up either.

A 429 (``RetryAfter``) blocks that chat for the time Telegram names and the *same* message is sent
again — as often as it takes. Network errors (Telegram unreachable, 5xx) are retried with backoff
for up to ``give_up_after_s`` (a reply may then arrive twice, never not at all) while the component
shows ``down``; a message Telegram refuses outright (bad request, bot blocked) is logged and
skipped, after one plain-text attempt if only its HTML was the problem. Anything else going wrong
with one message (a bug, a message that cannot be encoded) is retried twice and then skipped with
the traceback in the log: one bad message never takes its chat's queue with it.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.confirmations import parse_payload
from bot.notify.ratelimit import PacingObserver, TokenBucket
from bot.platforms.telegram.render import Keyboard, OutMessage, PhotoMessage, TextMessage, units
from bot.retrying import Escalating
from core.ops import ComponentHealth
from core.runtime import Supervisor
from exchanges.retry import Backoff

log = logging.getLogger("tradectl.bot.telegram")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
GIVE_UP_AFTER_S = 600.0  # a reply still unsent after 10 minutes of network errors is stale
MAX_BACKOFF_S = 30.0
MAX_UNEXPECTED_RETRIES = 2
COMPONENT = "telegram:send"


@dataclass(frozen=True, slots=True)
class Post:
    """Send one rendered message, as a reply to ``reply_to`` when set (commands in groups)."""

    message: OutMessage
    reply_to: int | None = None
    # Commands for the persistent reply keyboard (``telegram.reply_keyboard``), rows of command texts;
    # used only on a message without inline buttons (a message carries one keyboard or the other).
    menu: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class CloseKeyboard:
    """Take the buttons off a confirmation that was answered, noting the outcome under its text."""

    message_id: int
    original_html: str | None
    note_html: str


Outgoing = Post | CloseKeyboard
# Told (chat id, message id, nonce) once a confirmation prompt is posted: where to edit it when it expires.
PromptPosted = Callable[[int, int, str], Awaitable[None]]


def prompt_nonce(keyboard: Keyboard) -> str | None:
    """The nonce of the confirmation whose Confirm button ``keyboard`` carries, if any."""
    for row in keyboard:
        for button in row:
            parsed = parse_payload(button.payload)
            if parsed is not None and parsed[0] == "confirm":
                return parsed[1]
    return None


def retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds (read without PTB's int/timedelta deprecation warning)."""
    value = getattr(exc, "_retry_after", None)
    if value is not None and hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return float(exc.retry_after)  # type: ignore[arg-type]  # PTB: int | timedelta; a timedelta returned above


def keyboard_markup(keyboard: Keyboard) -> InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.payload) for b in row]
                                 for row in keyboard])


def menu_markup(menu: tuple[tuple[str, ...], ...]) -> ReplyKeyboardMarkup:
    """The persistent reply keyboard: each button sends its command as a message from the user."""
    return ReplyKeyboardMarkup([list(row) for row in menu], resize_keyboard=True, is_persistent=True)


_TAG = re.compile(r"<[^>]+>")


def _plain(message: OutMessage) -> OutMessage:
    """The same message without HTML markup (tags dropped, entities decoded)."""

    def strip(text: str) -> str:
        return html.unescape(_TAG.sub("", text))

    if isinstance(message, TextMessage):
        return TextMessage(strip(message.html), message.keyboard)
    return PhotoMessage(message.png, strip(message.caption_html), message.keyboard)


class OverallPace:
    """The overall limit shared by every chat, handing out turns to kill-lane replies first.

    python-telegram-bot's ``AIORateLimiter`` keeps the overall limit too, but serves whoever asked
    first; pacing here first means it rarely has to wait, and never makes KILLED queue behind a flood.
    """

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = TokenBucket(rate_per_s, max(1.0, rate_per_s), clock)
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()
        self._pump: asyncio.Task[None] | None = None

    async def turn(self, urgent: bool) -> None:
        if not self._urgent and not self._normal and self._bucket.wait_time() == 0:
            self._bucket.take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._hand_out(), name="telegram:send:pace")
        await waiter

    async def _hand_out(self) -> None:
        """Runs while anyone waits; its end is the queues' end (it is never left waiting on its own)."""
        while self._urgent or self._normal:
            wait = self._bucket.wait_time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            line = self._urgent if self._urgent else self._normal
            waiter = line.popleft()
            if not waiter.done():  # a cancelled sender gave its turn back
                self._bucket.take()
                waiter.set_result(None)

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        for waiter in (*self._urgent, *self._normal):
            waiter.cancel()
        self._urgent.clear()
        self._normal.clear()


class _ChatQueue:
    """One chat's messages: replies to the kill lane first, then the rest, each in order."""

    __slots__ = ("normal", "urgent")

    def __init__(self) -> None:
        self.urgent: deque[Outgoing] = deque()
        self.normal: deque[Outgoing] = deque()

    def __len__(self) -> int:
        return len(self.urgent) + len(self.normal)


class ChatSender:
    """Delivers :class:`Outgoing` items per chat. ``submit`` never blocks; ``close`` drains."""

    def __init__(self, bot: Bot, *, rate_per_s: float, burst: int, overall_per_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, health: ComponentHealth | None = None,
                 give_up_after_s: float = GIVE_UP_AFTER_S, on_prompt: PromptPosted | None = None,
                 pacing: PacingObserver | None = None) -> None:
        self.bot = bot
        self.pacing = pacing
        self.on_prompt = on_prompt
        self.rate_per_s, self.burst = rate_per_s, burst
        self._clock = clock
        self.health = health
        self.give_up_after_s = give_up_after_s
        self._overall = OverallPace(overall_per_s, clock)
        self._queues: dict[int, _ChatQueue] = {}
        self._buckets: dict[int, TokenBucket] = {}
        self._supervisor = Supervisor("telegram:send")
        self._drained = asyncio.Event()  # set while no chat has anything queued
        self._drained.set()
        self._closed = False
        self.sent = 0
        self.rate_limited = 0  # 429 answers, each followed by a retry of the same message
        self.skipped = 0  # refused by Telegram for good (bad request, bot blocked), or failing for too long
        self.failed = 0  # skipped after an unexpected error

    def submit(self, chat_id: int, item: Outgoing, *, urgent: bool = False) -> None:
        """Queue ``item`` for ``chat_id``; ``urgent`` ones go after the message being sent, ahead of the rest."""
        if self._closed:
            log.warning("telegram: not sending to chat %s after stop", chat_id)
            return
        queue = self._queues.get(chat_id)
        if queue is None:
            queue = self._queues[chat_id] = _ChatQueue()
            self._drained.clear()
            self._supervisor.spawn(f"telegram:chat:{chat_id}", self._serve(chat_id, queue))
        (queue.urgent if urgent else queue.normal).append(item)

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def close(self, timeout: float) -> None:
        """Stop taking messages; give those queued ``timeout`` seconds, then cancel the rest."""
        self._closed = True
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            pass  # counted and logged below
        left = self.pending()
        if left:
            log.error("telegram: %d message(s) not sent within %.1fs of stopping", left, timeout)
        await self._supervisor.stop(timeout=1.0)
        self._overall.close()
        self._queues.clear()

    def _bucket(self, chat_id: int) -> TokenBucket:
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            if len(self._buckets) > 1000:  # forget idle chats; their buckets are full again anyway
                for key in [k for k, b in self._buckets.items() if k not in self._queues and b.wait_time() == 0]:
                    del self._buckets[key]
            bucket = self._buckets[chat_id] = TokenBucket(self.rate_per_s, self.burst, self._clock)
        return bucket

    async def _serve(self, chat_id: int, queue: _ChatQueue) -> None:
        try:
            while queue:
                line = queue.urgent if queue.urgent else queue.normal
                try:
                    await self._deliver(chat_id, line[0], line is queue.urgent)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failed += 1
                    log.exception("telegram: a message to chat %s failed and is skipped", chat_id)
                line.popleft()
        finally:
            if self._queues.get(chat_id) is queue:
                del self._queues[chat_id]
            if not self._queues:
                self._drained.set()

    def _waited(self, reason: str, seconds: float) -> None:
        if self.pacing is not None and seconds > 0:
            self.pacing.chat_send_waited("telegram", reason, seconds)

    def _down(self, reason: str) -> None:
        if self.health is not None:
            self.health.down(COMPONENT, reason)

    def _up(self) -> None:
        if self.health is not None:
            self.health.up(COMPONENT)

    async def _deliver(self, chat_id: int, item: Outgoing, urgent: bool = False) -> None:
        bucket = self._bucket(chat_id)
        failures = unexpected = 0
        retries = Escalating(Backoff(initial_s=0.5, max_s=MAX_BACKOFF_S, jitter=0))
        plain_tried = False
        started = self._clock()
        while True:
            wait = bucket.wait_time()
            if wait > 0:
                self._waited("retry_after" if bucket.blocked() else "pace", wait)
                await asyncio.sleep(wait)
                continue
            bucket.take()
            turn_asked = self._clock()
            await self._overall.turn(urgent)
            self._waited("pace", self._clock() - turn_asked)
            try:
                await self._call(chat_id, item)
                self.sent += 1
                self._up()
                return
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                self.rate_limited += 1
                bucket.block_for(seconds)
                log.info("telegram: chat %s rate limited, sending the same message again in %.1fs", chat_id, seconds)
            except BadRequest as exc:
                if isinstance(item, CloseKeyboard):
                    return  # already closed, or too old to edit: nothing more to do
                if "parse entities" in str(exc).lower() and not plain_tried:
                    log.warning("telegram: HTML refused (%s); sending as plain text", exc)
                    item, plain_tried = Post(_plain(item.message), item.reply_to, item.menu), True
                    continue
                self.skipped += 1
                log.error("telegram: chat %s refused a message: %s", chat_id, exc)
                return
            except Forbidden as exc:
                self.skipped += 1
                log.warning("telegram: cannot write to chat %s: %s", chat_id, exc)
                return
            except TelegramError as exc:
                if not _transient(exc):
                    raise  # e.g. a message that cannot be encoded: not worth ten minutes of retries
                failures += 1
                if self._clock() - started > self.give_up_after_s:
                    self.skipped += 1
                    log.error("telegram: giving up on a message to chat %s after %d errors in %.0fs: %s",
                              chat_id, failures, self._clock() - started, exc)
                    return
                delay = retries.next()
                self._down(f"sending to chat {chat_id} failed ({type(exc).__name__}: {exc}); retrying")
                log.warning("telegram: sending to chat %s failed (%s); retry in %.1fs", chat_id, exc, delay)
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                unexpected += 1
                if unexpected > MAX_UNEXPECTED_RETRIES:
                    raise
                log.warning("telegram: sending to chat %s failed unexpectedly (%r); retry %d of %d",
                            chat_id, exc, unexpected, MAX_UNEXPECTED_RETRIES)
                await asyncio.sleep(0.2 * unexpected)

    async def _call(self, chat_id: int, item: Outgoing) -> None:
        if isinstance(item, CloseKeyboard):
            text = (item.original_html or "") + item.note_html
            if item.original_html is not None and units(text) <= 4096:
                await self.bot.edit_message_text(text, chat_id=chat_id, message_id=item.message_id,
                                                 parse_mode=ParseMode.HTML, reply_markup=None,
                                                 link_preview_options=_NO_PREVIEW)
            else:
                await self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=item.message_id,
                                                         reply_markup=None)
            return
        message = item.message
        reply = ReplyParameters(item.reply_to, allow_sending_without_reply=True) if item.reply_to else None
        markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = keyboard_markup(message.keyboard)
        if markup is None and item.menu:
            markup = menu_markup(item.menu)
        if isinstance(message, TextMessage):
            sent = await self.bot.send_message(chat_id, message.html, parse_mode=ParseMode.HTML, reply_markup=markup,
                                               reply_parameters=reply, link_preview_options=_NO_PREVIEW)
        else:
            sent = await self.bot.send_photo(chat_id, message.png, caption=message.caption_html or None,
                                             parse_mode=ParseMode.HTML, reply_markup=markup, reply_parameters=reply)
        nonce = prompt_nonce(message.keyboard) if self.on_prompt is not None else None
        if nonce is not None and self.on_prompt is not None:
            try:  # never raises into the retry loop: the prompt is posted, it must not be posted twice
                await self.on_prompt(chat_id, sent.message_id, nonce)
            except Exception:
                log.warning("telegram: could not record where a prompt was posted (it keeps its buttons "
                            "after expiry)", exc_info=True)


def _transient(exc: TelegramError) -> bool:
    """A failure worth retrying for minutes: Telegram unreachable, timing out, answering 5xx, or the
    token refused (the whole platform is down for us, not this message).

    PTB reports any exception raised while building or sending a request as a ``NetworkError``
    ("Unknown error in HTTP implementation"); one caused by something other than the network (a
    value that cannot be encoded) fails the same way every time, as do the other Telegram errors."""
    if isinstance(exc, (TimedOut, InvalidToken)):
        return True
    if not isinstance(exc, NetworkError):
        return False
    cause = exc.__cause__
    return cause is None or isinstance(cause, (httpx.HTTPError, OSError))
