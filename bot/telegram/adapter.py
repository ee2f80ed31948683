"""The Telegram adapter: polling as leader work, updates turned into dispatcher calls.

Only the leader polls (two pollers of one token make Telegram answer 409 Conflict). Every replica
runs :class:`TelegramPolling` as a component: ``start()`` connects (``getMe``) so a follower is
ready to take over at once; the elector's ``lead(epoch)`` starts polling and ``step_down()`` stops
it. python-telegram-bot is driven by hand inside the service's event loop — ``initialize``,
``start``, ``updater.start_polling`` and the reverse — never ``run_polling``, which wants to own the
loop and the signals.

Translation only: every message and button press goes to the dispatcher (which does the allowlist,
roles, confirmations, audit and de-duplication by ``update_id``), and its reply is rendered by
:mod:`bot.telegram.render` and queued on :class:`~bot.telegram.send.ChatSender`.

Delivery is at least once, effect exactly once. The updater confirms updates to Telegram by asking
for the next offset; here that only happens after an update has been *handled*
(:class:`~bot.telegram.api.HandledQueue`), so a crash between fetching and handling redelivers the
update to the next leader instead of losing it, and the dispatcher's processed-update record refuses
a second run. Before handling, the ``fence`` (the lease still ours at our epoch) is checked; a stale
leader leaves the update unconfirmed and stops polling. A 409 Conflict means someone else polls:
polling stops, the lease is re-checked (``on_conflict``; PTB's error callback is not a coroutine)
and polling resumes after a backoff only if leadership was kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from telegram import BotCommand, Message, Update
from telegram.error import Conflict, InvalidToken, TelegramError
from telegram.ext import ContextTypes, TypeHandler

from bot.dispatcher import Dispatcher
from bot.identity import Role
from bot.reply import Reply
from bot.telegram.api import AnyApplication, HandledQueue, build_application
from bot.telegram.render import escape, render_telegram
from bot.telegram.send import ChatSender, CloseKeyboard, Post
from bot.telegram.updates import actor_of, addressed_text, chat_of, private_chat, refused
from core.lifecycle import Supervisor, TaskFailed
from core.settings_models import TelegramSettings

log = logging.getLogger("tradectl.bot.telegram")
ALLOWED_UPDATES = ("message", "callback_query")  # edits of old messages are never commands
MAX_BACKOFF_S = 60.0
_TERM_TASKS = ("telegram:lead", "telegram:pause", "telegram:menu")
Fence = Callable[[int], Awaitable[bool]]


class TelegramPolling:
    """A component (``start``/``stop``) whose leader terms are ``lead(epoch)``/``step_down()``.

    Every method is safe to call twice. ``state``: stopped | idle | starting | polling | paused.
    """

    name = "telegram"

    def __init__(self, dispatcher: Dispatcher, settings: TelegramSettings, *, fence: Fence | None = None,
                 on_conflict: Callable[[], None] | None = None,
                 on_failure: Callable[[TaskFailed], None] | None = None) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self._fence = fence
        self._on_conflict = on_conflict
        self._supervisor = Supervisor("telegram", on_failure)
        self._app: AnyApplication | None = None
        self._queue: HandledQueue | None = None
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._term_end = asyncio.Event()
        self._term_end.set()
        self._ready: asyncio.Event | None = None
        self.sender: ChatSender | None = None
        self.epoch: int | None = None
        self.state = "stopped"
        self._backoff = 0.0
        self._last_conflict = -1e9
        self.conflicts = 0

    # -- the component: connected on every replica ------------------------------------------

    async def start(self) -> None:
        """Connect in the background (retrying while Telegram is unreachable); never polls."""
        if self._app is not None:
            return
        self._closing = asyncio.Event()
        self._set_app(build_application(self.settings))
        self.state = "idle"
        self._supervisor.spawn("telegram:connect", self._connect())

    async def stop(self) -> None:
        if self._app is None:
            return
        await self.step_down()
        self._closing.set()
        await self._supervisor.stop(timeout=5.0)
        app, self._app = self._app, None
        await _quietly(app.shutdown)
        self._connected.clear()
        self.state = "stopped"

    def _set_app(self, app: AnyApplication) -> None:
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        self._app = app
        self._queue = app.update_queue  # type: ignore[assignment]

    async def _connect(self) -> None:
        delay = 1.0
        while not self._closing.is_set():
            app = self._app
            assert app is not None
            try:
                await app.initialize()
            except InvalidToken:
                log.error("telegram: the bot token was refused (telegram.token); Telegram commands are off")
                return
            except (TelegramError, OSError) as exc:
                log.warning("telegram: cannot reach the Bot API (%s); retrying in %.0fs", exc, delay)
                await _quietly(app.shutdown)
                self._set_app(build_application(self.settings))
                if await _wait(self._closing, delay):
                    return
                delay = min(MAX_BACKOFF_S, delay * 2)
                continue
            self._connected.set()
            log.info("telegram: connected as @%s", app.bot.username)
            return

    # -- leader terms ------------------------------------------------------------------------

    async def lead(self, epoch: int, *, ready: asyncio.Event | None = None) -> None:
        """Poll as the leader of ``epoch``. Returns at once (polling starts in a task once connected).

        With ``ready``, updates are fetched at once but handled only after it is set (the rest of the
        leader work, e.g. the trading core, is up): no command meets a half-started leader, and until
        then nothing is confirmed to Telegram.
        """
        if self._app is None:
            raise RuntimeError("TelegramPolling.lead() before start()")
        if self.epoch == epoch and not self._term_end.is_set():
            return
        await self.step_down()
        self.epoch, self._ready = epoch, ready
        self._term_end = asyncio.Event()
        self.state = "starting"
        self._supervisor.spawn("telegram:lead", self._lead(epoch))

    async def wait_polling(self, timeout: float) -> bool:
        """Wait until polling runs (True) or ``timeout`` passes (False; connecting goes on meanwhile)."""
        end = time.monotonic() + timeout
        while self.state != "polling":
            if time.monotonic() >= end or self._term_end.is_set():
                return False
            await asyncio.sleep(0.01)
        return True

    async def step_down(self) -> None:
        """Stop polling; handle what was fetched; send what is queued (within ``stop_timeout_s``)."""
        if self._term_end.is_set():
            return
        self._term_end.set()
        for name in _TERM_TASKS:
            await self._supervisor.cancel(name)
        app, sender = self._app, self.sender
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if app is not None and app.updater is not None and app.updater.running:
            steps.append(("updater", app.updater.stop))
        if app is not None and app.running:
            steps.append(("application", app.stop))
        if sender is not None:
            steps.append(("sender", lambda: sender.close(self.settings.stop_timeout_s)))
        for what, step in steps:
            try:
                await step()
            except Exception:  # noqa: BLE001 - keep stopping the rest; the log has the detail
                log.warning("telegram: stopping the %s failed", what, exc_info=True)
        self.sender = None
        self.state = "idle" if self._app is not None else "stopped"
        log.info("telegram polling stopped (epoch %s)", self.epoch)

    async def _lead(self, epoch: int) -> None:
        if not self._connected.is_set():
            await _first_of(self._connected, self._term_end, self._closing)
        app = self._app
        if app is None or self._term_end.is_set() or not self._connected.is_set():
            return
        await app.start()
        self.sender = ChatSender(app.bot, rate_per_s=self.settings.chat_rate_per_s, burst=self.settings.chat_burst)
        await self._poll(epoch)
        if self.settings.set_commands:
            self._supervisor.spawn("telegram:menu", self._publish_menu())

    async def _poll(self, epoch: int) -> None:
        app = self._app
        assert app is not None and app.updater is not None and self._queue is not None
        self._queue.release()
        await app.updater.start_polling(poll_interval=0, timeout=self.settings.poll_timeout_s, bootstrap_retries=-1,
                                        drop_pending_updates=False, allowed_updates=list(ALLOWED_UPDATES),
                                        error_callback=self._polling_error)
        self.state = "polling"
        log.info("telegram polling started (epoch %d)", epoch)

    async def _publish_menu(self) -> None:
        """The / menu lists every command (roles still decide who may run them); written only when it changed."""
        app = self._app
        if app is None:
            return
        wanted = [BotCommand(name, help_[:256] or name) for name, help_ in self.dispatcher.registry.menu(Role.ADMIN)]
        try:
            current = await app.bot.get_my_commands()
            if [(c.command, c.description) for c in current] != [(c.command, c.description) for c in wanted]:
                await app.bot.set_my_commands(wanted)
        except TelegramError as exc:
            log.warning("telegram: could not publish the command menu: %s", exc)

    # -- conflicts and fencing ---------------------------------------------------------------

    def _polling_error(self, exc: TelegramError) -> None:
        """PTB's error callback (a plain function, called from the polling task)."""
        if isinstance(exc, Conflict):
            self.conflicts += 1
            log.warning("telegram answered 409 Conflict (another process polls this bot): "
                        "pausing polling and re-checking the lease")
            self._pause("conflict")
        else:
            log.warning("telegram: polling error: %s", exc)

    def _pause(self, reason: str) -> None:
        if self.state != "polling" or self._term_end.is_set():
            return
        self.state = "paused"
        try:
            self._supervisor.spawn("telegram:pause", self._pause_and_resume(reason))
        except RuntimeError:  # the previous pause is just finishing: it re-checks the lease anyway
            self.state = "polling"

    async def _pause_and_resume(self, reason: str) -> None:
        """Stop polling and re-check the lease; poll again only while it is still ours.

        The first conflict in a while resumes at once (typically a replica that lost the lease made
        one last call on its way out); conflicts that keep coming (another deployment polling the
        same token) wait ``conflict_backoff_s``, doubling up to a minute.
        """
        app, term_end, epoch = self._app, self._term_end, self.epoch
        if app is None or app.updater is None or epoch is None:
            return
        if app.updater.running:
            await app.updater.stop()
        if self._on_conflict is not None:
            self._on_conflict()
        delay = self._next_backoff()
        log.info("telegram polling paused (%s); resuming in %.1fs if still the leader", reason, delay)
        if await _wait(term_end, delay):
            return
        while not await self._still_leader(epoch):
            if await _wait(term_end, 1.0):
                return
        await self._poll(epoch)

    def _next_backoff(self) -> float:
        now = time.monotonic()
        if now - self._last_conflict > 5 * MAX_BACKOFF_S:
            self._backoff = 0.0
        self._last_conflict = now
        delay = self._backoff
        self._backoff = min(MAX_BACKOFF_S, max(self.settings.conflict_backoff_s, self._backoff * 2))
        return delay

    async def _still_leader(self, epoch: int) -> bool:
        if self._fence is None:
            return True
        try:
            return await self._fence(epoch)
        except Exception:  # noqa: BLE001 - cannot tell: act as if not, the update stays unconfirmed
            log.warning("telegram: lease check failed", exc_info=True)
            return False

    # -- updates -----------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        epoch, term_end = self.epoch, self._term_end
        if self._ready is not None and not self._ready.is_set():
            await _first_of(self._ready, term_end)
        if epoch is None or term_end.is_set() or not await self._still_leader(epoch):
            log.warning("telegram: update %s left unconfirmed: not sure to lead epoch %s", update.update_id, epoch)
            if self._queue is not None:
                self._queue.hold()
            self._pause("lease check failed")
            return
        if update.callback_query is not None:
            await self._on_press(update, epoch)
        elif update.message is not None:
            await self._on_message(update.message, update.update_id, epoch)

    async def _on_message(self, message: Message, update_id: int, epoch: int) -> None:
        if message.from_user is None or not message.text:
            return
        text = addressed_text(message.text, self._app.bot.username if self._app else None)
        if text is None:
            return
        chat = chat_of(message.chat)
        reply = await self.dispatcher.handle_text(actor_of(message.from_user), chat, text, message.date,
                                                  str(update_id), epoch=epoch)
        if reply is not None:
            self._post(message.chat.id, reply, message.message_id if chat.kind != "private" else None)

    async def _on_press(self, update: Update, epoch: int) -> None:
        query = update.callback_query
        assert query is not None
        origin = query.message
        chat_id = origin.chat.id if origin is not None else query.from_user.id
        chat = chat_of(origin.chat) if origin is not None else private_chat(query.from_user)
        reply = await self.dispatcher.handle_callback(actor_of(query.from_user), chat, query.data or "",
                                                      str(update.update_id), epoch=epoch)
        alert = reply.plain_text()[:200] if reply is not None and refused(reply) else None
        try:
            await query.answer(alert, show_alert=alert is not None)
        except TelegramError as exc:  # too old, or answered before a redelivery: the press still counts
            log.info("telegram: could not answer a button press: %s", exc)
        if reply is None or self.sender is None:
            return
        if isinstance(origin, Message) and not refused(reply):
            note = "\n\n<i>" + escape(reply.summary(200) or "done") + "</i>"
            self.sender.submit(chat_id, CloseKeyboard(origin.message_id, origin.text_html if origin.text else None,
                                                      note))
        self._post(chat_id, reply, None)

    def _post(self, chat_id: int, reply: Reply, reply_to: int | None) -> None:
        if self.sender is None:
            return
        for i, message in enumerate(render_telegram(reply)):
            self.sender.submit(chat_id, Post(message, reply_to if i == 0 else None))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: handling update failed", exc_info=context.error)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True if ``event`` was set meanwhile."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _quietly(step: Callable[[], Awaitable[None]]) -> None:
    try:
        await step()
    except Exception:  # noqa: BLE001
        log.debug("telegram: cleanup step failed", exc_info=True)
