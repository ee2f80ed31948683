"""The Telegram adapter: polling as leader work, updates turned into dispatcher calls.

Only the leader polls (two pollers of one token make Telegram answer 409 Conflict). Every replica
runs :class:`TelegramPolling` as a component: ``start()`` connects (``getMe``) so a follower is
ready to take over at once; the elector's ``lead(epoch)`` starts polling and ``step_down()`` stops
it. python-telegram-bot is driven by hand inside the service's event loop — ``initialize``,
``start``, ``updater.start_polling`` and the reverse — never ``run_polling``, which wants to own the
loop and the signals.

Translation only: every message and button press goes to the dispatcher (which does the allowlist,
roles, confirmations, audit and de-duplication by ``update_id``), and its reply is rendered by
:mod:`bot.platforms.telegram.render` and queued on :class:`~bot.platforms.telegram.send.ChatSender`.

Updates are handled concurrently per chat (:class:`~bot.lanes.ChatLanes`): each chat's updates in
order, chats independently, in bounded queues, and the kill lane (``/kill``, ``/closeall``,
``/pause`` and their confirmations) at once — one chat's flood never delays another chat or the
kill switch. Fetching comes first while Telegram holds more than a batch, and text messages are
read from their JSON (``updates.raw_message``), so a thousand queued messages cost little more than
their download before the press behind them is seen.

Delivery is at least once, effect exactly once. The updater confirms a batch to Telegram with its
next ``getUpdates``; that call first waits (up to ``CONFIRM_WAIT_S``) until the batch has been
handled, so a crash between fetching and handling normally redelivers the update to the next
leader instead of losing it, and the dispatcher's processed-update record refuses a second run.
Only while a chat's backlog is being worked off (a flood) is the next batch fetched at once — the
only way to see an urgent update behind it — and a crash then loses the backlog unhandled. Before an
update is admitted, the ``fence`` (the lease still ours at our epoch; a positive answer is reused
for ``FENCE_CACHE_S``) is checked; a stale leader leaves the update unconfirmed and stops polling.
A 409 Conflict means someone else polls: polling stops, the lease is re-checked (``on_conflict``;
PTB's error callback is not a coroutine) and polling resumes after a backoff only if leadership was
kept.

Nothing fails silently: connecting retries every failure (an unreachable Bot API, an answer PTB
cannot parse, a refused token) with backoff, and the component's state — ``starting``, ``idle``
(connected, not leading), ``up`` (polling) or ``down`` with the reason — goes to the
:class:`~core.ops.components.ComponentHealth` registry that ``/health`` and ``tradectl health`` read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Message, Update
from telegram.error import Conflict, InvalidToken, TelegramError

from bot.confirmations import Pending
from bot.dispatcher import Dispatcher
from bot.expiry import SWEEP_INTERVAL_S, ExpiredPrompts
from bot.identity import Actor, ChatRef
from bot.lanes import ChatLanes, LaneLimits, Work, is_urgent
from bot.notify.ratelimit import PacingObserver
from bot.platforms.telegram.api import AdmissionQueue, AnyApplication, build_application, polling_request
from bot.platforms.telegram.menu import publish_menus
from bot.platforms.telegram.render import escape, render_telegram, reply_menu
from bot.platforms.telegram.send import ChatSender, CloseKeyboard, Post
from bot.platforms.telegram.updates import (
    RawMessage,
    actor_of,
    addressed_text,
    chat_of,
    private_chat,
    raw_input,
    raw_message,
    refused,
)
from bot.reply import Reply
from bot.retrying import Escalating
from core.ops import ComponentHealth, ComponentState
from core.runtime import Supervisor, TaskFailed
from core.settings import TelegramSettings
from exchanges.retry import Backoff

log = logging.getLogger("tradectl.bot.telegram")
ALLOWED_UPDATES = ("message", "callback_query")  # edits of old messages are never commands
MAX_BACKOFF_S = 60.0
BATCH = 100  # getUpdates answers at most this many updates (Telegram's default limit)
CONFIRM_WAIT_S = 0.2  # how long the next getUpdates waits for the last batch to be handled
FETCH_FIRST_S = 0.25  # longer than a getUpdates that has updates to return takes
FENCE_CACHE_S = 0.2  # far below any lease's TTL: a lease held 0.2 s ago cannot have passed on since
COMPONENT = "telegram"
_TERM_TASKS = ("telegram:lead", "telegram:pause", "telegram:menu", "telegram:expiry")
Fence = Callable[[int], Awaitable[bool]]


class TelegramPolling:
    """A component (``start``/``stop``) whose leader terms are ``lead(epoch)``/``step_down()``.

    Every method is safe to call twice. ``state``: stopped | idle | starting | polling | paused.
    """

    name = "telegram"

    def __init__(self, dispatcher: Dispatcher, settings: TelegramSettings, *, fence: Fence | None = None,
                 on_conflict: Callable[[], None] | None = None,
                 on_failure: Callable[[TaskFailed], None] | None = None,
                 health: ComponentHealth | None = None, lane_limits: LaneLimits | None = None,
                 expiry_sweep_s: float = SWEEP_INTERVAL_S, tls: ssl.SSLContext | None = None,
                 pacing: PacingObserver | None = None) -> None:
        self.dispatcher = dispatcher
        self._pacing = pacing  # told each wait of the reply pacing (the metrics, when enabled)
        self.settings = settings
        self._tls = tls  # the TLS context the Bot API clients share with the service's others (None: their own)
        # while leading: prompts nobody pressed lose their buttons once they expire (bot/expiry.py)
        self.expired_prompts = ExpiredPrompts(dispatcher.confirmations, "telegram", self._mark_expired,
                                       timezone=dispatcher.timezone, interval_s=expiry_sweep_s)
        self._fence = fence
        self._on_conflict = on_conflict
        self._on_failure = on_failure
        self.health = health
        self.lane_limits = lane_limits or LaneLimits()
        # telegram.reply_keyboard: the persistent keyboard of read-only commands, for private chats
        self._menu = reply_menu(dispatcher.registry, dispatcher.settings) if settings.reply_keyboard else ()
        self._supervisor = Supervisor("telegram", self._task_failed)
        self._app: AnyApplication | None = None
        self._queue: AdmissionQueue | None = None
        self.lanes: ChatLanes | None = None
        self._fence_ok: tuple[int, float] | None = None  # (epoch, monotonic time until which it holds)
        self._fetch_first: asyncio.TimerHandle | None = None
        self._raw: dict[int, RawMessage] = {}  # messages read from their JSON, by update id, until admitted
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._term_end = asyncio.Event()
        self._term_end.set()
        self._ready: asyncio.Event | None = None
        self.sender: ChatSender | None = None
        self.epoch: int | None = None
        self.state = "stopped"
        # conflicts: the first in a while resumes at once, then conflict_backoff_s, doubling
        self._conflicts = Escalating(Backoff(initial_s=settings.conflict_backoff_s, max_s=MAX_BACKOFF_S, jitter=0),
                                     free=1)
        self._last_conflict = -1e9
        self.conflicts = 0

    # -- the component: connected on every replica ------------------------------------------

    async def start(self) -> None:
        """Connect in the background (retrying while Telegram is unreachable); never polls."""
        if self._app is not None:
            return
        self._closing = asyncio.Event()
        self._set_app(self._build())
        self.state = "idle"
        self._report("starting", "connecting to the Bot API")
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
        if self.health is not None:
            self.health.remove(COMPONENT)

    def _build(self) -> AnyApplication:
        return build_application(self.settings, polling_request(self._before_poll, self._on_poll, self._screen,
                                                                self._on_batch, tls=self._tls), tls=self._tls)

    def _set_app(self, app: AnyApplication) -> None:
        queue: AdmissionQueue = app.update_queue  # type: ignore[assignment]  # PTB types asyncio.Queue; ours was given
        queue.admit = self._admit
        self._app, self._queue = app, queue

    def _report(self, state: ComponentState, reason: str) -> None:
        if self.health is not None:
            self.health.report(COMPONENT, state, reason)

    def _task_failed(self, failure: TaskFailed) -> None:
        self._report("down", f"{failure.task_name} stopped: {_describe(failure.original)}")
        if self._on_failure is not None:
            self._on_failure(failure)

    async def _connect(self) -> None:
        """``getMe`` until it works. Every failure — unreachable, a refused token, an answer PTB cannot
        parse — is logged, shown as ``down`` and retried with backoff; this task never ends on one."""
        retries = Escalating(Backoff(initial_s=1.0, max_s=MAX_BACKOFF_S, jitter=0))
        while not self._closing.is_set():
            app = self._app
            assert app is not None
            try:
                await app.initialize()
            except Exception as exc:
                delay = retries.longest() if isinstance(exc, InvalidToken) else retries.next()
                if isinstance(exc, InvalidToken):
                    why = "the bot token was refused (telegram.token)"
                    log.error("telegram: %s; retrying in %.0fs", why, delay)
                elif isinstance(exc, (TelegramError, OSError)):
                    why = f"cannot reach the Bot API ({_describe(exc)})"
                    log.warning("telegram: %s; retrying in %.0fs", why, delay)
                else:
                    why = f"unexpected answer to getMe ({_describe(exc)})"
                    log.error("telegram: %s; retrying in %.0fs", why, delay, exc_info=exc)
                self._report("down", f"{why}; retrying in {delay:.0f}s")
                await _quietly(app.shutdown)
                self._set_app(self._build())
                if await _wait(self._closing, delay):
                    return
                continue
            self._connected.set()
            log.info("telegram: connected as @%s", app.bot.username)
            if self.state == "idle":
                self._report("idle", f"connected as @{app.bot.username}; polls only while leader")
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
        if self._connected.is_set():
            self._report("starting", f"starting to poll (epoch {epoch})")
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
        """Stop polling; handle what was fetched; send what is queued (within ``stop_timeout_s`` each)."""
        if self._term_end.is_set():
            return
        self._term_end.set()
        if self._fetch_first is not None:
            self._fetch_first.cancel()
            self._fetch_first = None
        self._raw.clear()
        for name in _TERM_TASKS:
            await self._supervisor.cancel(name)
        app, sender, lanes = self._app, self.sender, self.lanes
        timeout = self.settings.stop_timeout_s
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if app is not None and app.updater is not None and app.updater.running:
            steps.append(("updater", app.updater.stop))
        if app is not None and app.running:
            steps.append(("application", app.stop))
        if lanes is not None:
            steps.append(("update handling", lambda: lanes.drain(timeout)))
        if sender is not None:
            steps.append(("sender", lambda: sender.close(timeout)))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.warning("telegram: stopping the %s failed", what, exc_info=True)
        self.sender = self.lanes = None
        self.state = "idle" if self._app is not None else "stopped"
        if self._connected.is_set():
            self._report("idle", "connected; polls only while leader")
        log.info("telegram polling stopped (epoch %s)", self.epoch)

    async def _lead(self, epoch: int) -> None:
        if not self._connected.is_set():
            await _first_of(self._connected, self._term_end, self._closing)
        app = self._app
        if app is None or self._term_end.is_set() or not self._connected.is_set():
            return
        await app.start()
        self.sender = ChatSender(app.bot, rate_per_s=self.settings.chat_rate_per_s, burst=self.settings.chat_burst,
                                 overall_per_s=self.settings.overall_rate_per_s, health=self.health,
                                 on_prompt=self._prompt_posted, pacing=self._pacing)
        self.lanes = ChatLanes("telegram", self.lane_limits)
        await self._poll(epoch)
        self._supervisor.spawn("telegram:expiry", self.expired_prompts.run())
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
        self._report("up", f"polling (epoch {epoch})")
        log.info("telegram polling started (epoch %d)", epoch)

    async def _publish_menu(self) -> None:
        """Keep each role's / menu published while polling (:func:`publish_menus`)."""
        await publish_menus(lambda: self._app, self.dispatcher)

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
            self._on_poll(exc)

    def _on_poll(self, error: BaseException | None) -> None:
        """Each getUpdates answer: a failure shows ``down`` until the next one that works."""
        if self.state != "polling":
            return
        if error is None:
            self._report("up", f"polling (epoch {self.epoch})")
        else:
            if self.lanes is not None:
                self.lanes.pause_ordinary(False)
            self._report("down", f"polling failed ({_describe(error)}); retrying")

    def _on_batch(self, size: int) -> None:
        """A full batch means more updates wait at Telegram: fetch them before starting ordinary work."""
        if self._fetch_first is not None:
            self._fetch_first.cancel()
            self._fetch_first = None
        if self.lanes is not None:
            self.lanes.pause_ordinary(size >= BATCH)

    async def _before_poll(self) -> None:
        """The next getUpdates confirms the last batch: let it be handled first, unless a backlog is
        being worked off (then fetch at once, so an urgent update behind it is seen).

        A full batch may have been the last one (exactly 100 were waiting): an answer that does not
        come within ``FETCH_FIRST_S`` is a long poll with nothing pending, so ordinary work resumes."""
        lanes = self.lanes
        if lanes is not None:
            await lanes.wait_settled(CONFIRM_WAIT_S)
            if self._fetch_first is not None:
                self._fetch_first.cancel()
            self._fetch_first = asyncio.get_running_loop().call_later(FETCH_FIRST_S, lanes.pause_ordinary, False)

    def _pause(self, reason: str) -> None:
        if self.state != "polling" or self._term_end.is_set():
            return
        self.state = "paused"
        if self.lanes is not None:
            self.lanes.pause_ordinary(False)  # not fetching now: handle what was fetched
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
            self._conflicts.reset()
        self._last_conflict = now
        return self._conflicts.next()

    async def _still_leader(self, epoch: int) -> bool:
        if self._fence is None:
            return True
        try:
            return await self._fence(epoch)
        except Exception:
            log.warning("telegram: lease check failed", exc_info=True)
            return False

    # -- updates ---------------------------------------------------------------------------

    async def _admit(self, update: Update) -> bool:
        """Queue one fetched update on its chat's lane (or the kill lane). False: not sure to lead, so
        the update must stay unconfirmed (the queue holds it) and polling pauses."""
        epoch, term_end, lanes = self.epoch, self._term_end, self.lanes
        if self._ready is not None and not self._ready.is_set():
            await _first_of(self._ready, term_end)
        if epoch is None or lanes is None or term_end.is_set() or not await self._leading(epoch):
            log.warning("telegram: update %s left unconfirmed: not sure to lead epoch %s", update.update_id, epoch)
            self._pause("lease check failed")
            return False
        message = self._raw.pop(update.update_id, None)
        routed = (self._route_raw(message, update.update_id, epoch) if message is not None
                  else self._route(update, epoch))
        if routed is not None:
            chat, urgent, what, work = routed
            lanes.submit(chat, work, urgent=urgent, what=what)
        return True

    def _screen(self, raw: dict[str, Any]) -> bool:
        """Before PTB parses an update: False for a text message (read from its JSON here, handed on at
        admission) and for a button press its chat's full lane would drop anyway (not urgent)."""
        lanes = self.lanes
        if lanes is None:
            return True
        message = raw_message(raw)
        if message is not None and isinstance(raw.get("update_id"), int):
            self._raw[raw["update_id"]] = message
            return False
        seen = raw_input(raw)
        if seen is None or lanes.has_room(seen.chat.chat_id):
            return True
        text = seen.text
        if text is not None:
            text = addressed_text(text, self._app.bot.username if self._app else None)
            if text is None:
                return False  # for another bot: ignored either way
        if is_urgent(self.dispatcher, seen.actor, seen.chat, text, seen.payload):
            return True
        lanes.refuse(seen.chat.chat_id, "button press" if seen.payload is not None else "message")
        return False

    async def _leading(self, epoch: int) -> bool:
        cached = self._fence_ok
        if cached is not None and cached[0] == epoch and time.monotonic() < cached[1]:
            return True
        ok = await self._still_leader(epoch)
        self._fence_ok = (epoch, time.monotonic() + FENCE_CACHE_S) if ok else None
        return ok

    def _route(self, update: Update, epoch: int) -> tuple[str, bool, str, Work] | None:
        """(chat key, urgent, what, work) for an update we act on; None for anything else."""
        query = update.callback_query
        if query is not None:
            origin = query.message
            chat = chat_of(origin.chat) if origin is not None else private_chat(query.from_user)
            actor = actor_of(query.from_user)
            urgent = is_urgent(self.dispatcher, actor, chat, None, query.data or "")
            return chat.chat_id, urgent, "button press", lambda: self._on_press(update, actor, chat, epoch, urgent)
        message = update.message
        if message is None or message.from_user is None or not message.text:
            return None
        return self._route_raw(RawMessage(actor_of(message.from_user), chat_of(message.chat), message.chat.id,
                                          message.message_id, message.text, message.date), update.update_id, epoch)

    def _route_raw(self, message: RawMessage, update_id: int, epoch: int) -> tuple[str, bool, str, Work] | None:
        text = addressed_text(message.text, self._app.bot.username if self._app else None)
        if text is None:
            return None
        urgent = is_urgent(self.dispatcher, message.actor, message.chat, text, None)
        return (message.chat.chat_id, urgent, "message",
                lambda: self._on_message(message, text, update_id, epoch, urgent))

    async def _on_message(self, message: RawMessage, text: str, update_id: int, epoch: int, urgent: bool) -> None:
        chat = message.chat
        reply = await self.dispatcher.handle_text(message.actor, chat, text, message.sent_at, str(update_id),
                                                  epoch=epoch)
        if reply is not None:
            self._post(message.chat_id, reply, message.message_id if chat.kind != "private" else None, urgent,
                       private=chat.kind == "private")

    async def _on_press(self, update: Update, actor: Actor, chat: ChatRef, epoch: int, urgent: bool) -> None:
        query = update.callback_query
        assert query is not None
        origin = query.message
        chat_id = origin.chat.id if origin is not None else query.from_user.id
        reply = await self.dispatcher.handle_callback(actor, chat, query.data or "", str(update.update_id),
                                                      epoch=epoch)
        alert = reply.plain_text()[:200] if reply is not None and refused(reply) else None
        try:
            await query.answer(alert, show_alert=alert is not None)
        except TelegramError as exc:  # too old, or answered before a redelivery: the press still counts
            log.info("telegram: could not answer a button press: %s", exc)
        if reply is None or self.sender is None:
            return
        if isinstance(origin, Message) and reply.settled:  # the prompt is over, whatever the outcome
            note = "\n\n<i>" + escape(reply.summary(200) or "done") + "</i>"
            self.sender.submit(chat_id, CloseKeyboard(origin.message_id, origin.text_html if origin.text else None,
                                                      note), urgent=urgent)
        self._post(chat_id, reply, None, urgent, private=chat.kind == "private")

    async def _prompt_posted(self, chat_id: int, message_id: int, nonce: str) -> None:
        await self.dispatcher.confirmations.attach(nonce, f"{chat_id}:{message_id}")

    async def _mark_expired(self, pending: Pending, note: str) -> None:
        """Replace an expired prompt's text with ``note`` and take its buttons off (through the sender,
        so it keeps the chat's order and rate)."""
        chat_id, _, message_id = pending.message_ref.partition(":")
        if self.sender is None:
            raise RuntimeError("not leading: the sender is gone")
        self.sender.submit(int(chat_id), CloseKeyboard(int(message_id), "", "<i>" + escape(note) + "</i>"))

    def _post(self, chat_id: int, reply: Reply, reply_to: int | None, urgent: bool = False, *,
              private: bool = False) -> None:
        """Send ``reply``. In a private chat with ``telegram.reply_keyboard`` on, every message without
        inline buttons carries the persistent keyboard: Telegram keeps showing the last one sent, and
        sending it each time brings it back on a new device or after the user removed it."""
        if self.sender is None:
            log.warning("telegram: a reply to chat %s is not sent: polling has stopped", chat_id)
            return
        menu = self._menu if private else ()
        for i, message in enumerate(render_telegram(reply)):
            self.sender.submit(chat_id, Post(message, reply_to if i == 0 else None, menu), urgent=urgent)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


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
    except Exception:
        log.debug("telegram: cleanup step failed", exc_info=True)
