"""A fake Telegram Bot API server on loopback, for the real python-telegram-bot to talk to.

Point a bot at it with ``base_url=fake.base_url`` (``http://127.0.0.1:<port>/bot``). A test puts
updates in with :meth:`FakeTelegram.message` / :meth:`FakeTelegram.press` and reads what the bot
did from :attr:`FakeTelegram.sent`, :attr:`edits`, :attr:`answers`.

Behaviour modelled on the real service:

- ``getUpdates`` long-polls up to ``timeout``; ``offset`` confirms every update below it, and
  unconfirmed updates are delivered again. When a second ``getUpdates`` arrives while one is still
  waiting, the older one is ended with 409 Conflict ("terminated by other getUpdates request"),
  which is what a second bot process sees. Only 409s a live client received are counted.
- ``sendMessage`` / ``editMessageText`` parse HTML (``parse_mode=HTML``) the way Telegram does:
  unknown or unbalanced tags are a 400 "can't parse entities"; a text over 4096 UTF-16 units after
  parsing is a 400 "message is too long"; ``callback_data`` over 64 bytes is refused.
- Each chat has a token bucket (``chat_rate_per_s``, ``chat_burst``) and each group a limit per
  minute; a message over the limit gets a 429 with ``retry_after``, and a retry before that time
  is counted in :attr:`early_retries` (a client must wait) and refused again.

Requests may carry a tag before ``/bot<token>`` (``http://127.0.0.1:<port>/<tag>/bot``): the same
bot, but the fake records which tag (which replica) made each ``getUpdates``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
BOT_ID = 123456789
_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
         "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code", "pre": "pre",
         "a": "text_link", "tg-spoiler": "spoiler", "blockquote": "blockquote"}


class ParseError(ValueError):
    pass


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Entities(HTMLParser):
    """Telegram's HTML subset -> plain text and entities (offsets in UTF-16 units)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict[str, Any]] = []
        self._open: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise ParseError(f"unsupported start tag \"{tag}\"")
        self._open.append((tag, _units(self.text)))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            raise ParseError(f"unmatched end tag \"{tag}\"")
        _, start = self._open.pop()
        length = _units(self.text) - start
        if length:
            self.entities.append({"type": _TAGS[tag], "offset": start, "length": length})

    def handle_data(self, data: str) -> None:
        self.text += data

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        self.close()
        if self._open:
            raise ParseError(f"unclosed tag \"{self._open[-1][0]}\"")
        return self.text, sorted(self.entities, key=lambda e: e["offset"])


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    parser = _Entities()
    parser.feed(text)
    return parser.finish()


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


@dataclass
class Poll:
    """One getUpdates call, as the fake saw it."""

    tag: str
    offset: int
    timeout: float
    started: float
    ended: float | None = None
    outcome: str = "waiting"  # updates | empty | conflict | gone
    returned: tuple[int, ...] = ()
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    terminated: bool = False


@dataclass
class BotMessage:
    message_id: int
    chat_id: int
    kind: str  # text | photo
    html: str
    text: str
    entities: list[dict[str, Any]]
    keyboard: list[list[dict[str, Any]]] | None
    reply_to: int | None
    at: float
    photo_bytes: int = 0
    silent: bool = False
    reply_keyboard: dict[str, Any] | None = None  # a ReplyKeyboardMarkup as sent (rows under "keyboard")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [b for row in (self.keyboard or []) for b in row]

    def callback_data(self, label: str) -> str:
        for b in self.buttons:
            if b["text"].lower() == label.lower():
                return str(b["callback_data"])
        raise AssertionError(f"no button {label!r} on message {self.message_id}: {self.text!r}")


class FakeTelegram:
    def __init__(self, token: str = TOKEN, *, username: str = "tradectl_test_bot", chat_rate_per_s: float = 1.0,
                 chat_burst: int = 3, group_per_minute: int = 20, retry_after: int = 1) -> None:
        self.token, self.username = token, username
        self.chat_rate_per_s, self.chat_burst = chat_rate_per_s, chat_burst
        self.group_per_minute, self.retry_after = group_per_minute, retry_after
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(5_000_000)
        self.pending: list[dict[str, Any]] = []  # unconfirmed updates
        self.history: dict[int, dict[str, Any]] = {}  # every update ever put in, by id
        self.delivered: dict[int, int] = defaultdict(int)  # update id -> times returned by getUpdates
        self.polls: list[Poll] = []
        self._waiting: list[Poll] = []
        self.conflicts = 0
        self.sent: list[BotMessage] = []
        self.messages: dict[int, BotMessage] = {}
        self.edits: list[tuple[int, int, str]] = []  # (chat, message id, new text)
        self.answers: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []  # the default scope's menu
        self.scoped: dict[str, list[dict[str, Any]]] = {}  # other scopes' menus, by scope_key()
        self.requests: list[tuple[str, str, float]] = []  # (tag, method, time)
        self.status_429 = 0
        self.early_retries = 0
        self.errors: list[tuple[str, str]] = []  # (method, description) of every 4xx answered
        self.missing_chats: set[int] = set()  # chats the bot cannot see: "chat not found"
        self._chats: dict[int, dict[str, Any]] = {}
        self._queries: dict[str, bool] = {}  # callback query id -> answered
        self._tokens: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._blocked: dict[int, float] = {}
        self._group_sends: dict[int, deque[float]] = defaultdict(deque)
        self._changed = asyncio.Event()

    # -- server ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    def tagged_base_url(self, tag: str) -> str:
        return f"{self.url}/{tag}/bot"

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tag}/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for poll in self._waiting:
            poll.wake.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        tag = request.match_info.get("tag", "")
        self.requests.append((tag, method, time.monotonic()))
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params = await _params(request)
        handler = getattr(self, "_api_" + method, None)
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params, request, tag)
        except ApiError as exc:
            if exc.code != 409:
                self.errors.append((method, exc.description))
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    # -- putting updates in ------------------------------------------------------------------

    def _user(self, user_id: int, first_name: str) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name}

    def chat(self, chat_id: int, kind: str = "private", title: str = "") -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": kind}
            if kind != "private":
                chat["title"] = title or f"chat {chat_id}"
            self._chats[chat_id] = chat
        return chat

    def _push(self, update: dict[str, Any]) -> int:
        self.history[int(update["update_id"])] = update
        self.pending.append(update)
        for poll in self._waiting:
            poll.wake.set()
        return int(update["update_id"])

    def message(self, user_id: int, text: str, *, chat_id: int | None = None, kind: str = "private",
                first_name: str = "User", date: float | None = None) -> int:
        """A user sends ``text``; returns the update id."""
        chat = self.chat(chat_id if chat_id is not None else user_id, kind)
        msg = {"message_id": next(self._message_ids), "date": int(date if date is not None else time.time()),
               "chat": chat, "from": self._user(user_id, first_name), "text": text}
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": _units(text.split()[0])}]
        return self._push({"update_id": next(self._update_ids), "message": msg})

    def press(self, user_id: int, message: BotMessage, data: str, *, first_name: str = "User") -> int:
        """A user presses a button carrying ``data`` under the bot's ``message``; returns the update id."""
        query_id = str(next(self._query_ids))
        self._queries[query_id] = False
        query = {"id": query_id, "from": self._user(user_id, first_name), "message": self._message_json(message),
                 "chat_instance": str(message.chat_id), "data": data}
        return self._push({"update_id": next(self._update_ids), "callback_query": query})

    def redeliver(self, update_id: int) -> None:
        """Make an update unconfirmed again, as if its confirmation had been lost (a leader crashed
        after handling it). A poller starting from offset 0 — a new leader — receives it again."""
        if all(u["update_id"] != update_id for u in self.pending):
            self.pending.append(self.history[update_id])
            self.pending.sort(key=lambda u: int(u["update_id"]))
        for poll in self._waiting:
            poll.wake.set()

    # -- reading what the bot did ------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[BotMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent_to(chat_id)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
        """Wait until ``predicate()`` is true (re-checked whenever the bot does something)."""
        end = time.monotonic() + timeout
        while not predicate():
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; sent: {[m.text[:80] for m in self.sent]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass

    async def reply_to(self, chat_id: int, after: int = 0, timeout: float = 10.0) -> BotMessage:
        """The first message the bot sends into ``chat_id`` beyond the first ``after``."""
        await self.wait_for(lambda: len(self.sent_to(chat_id)) > after, timeout, f"a reply in chat {chat_id}")
        return self.sent_to(chat_id)[after]

    def pollers(self) -> list[str]:
        """Tags with a getUpdates waiting right now."""
        return [p.tag for p in self._waiting if not p.terminated]

    # -- Bot API methods ---------------------------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "tradectl", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _api_getMe(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        return self._bot_user()

    async def _api_deleteWebhook(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        if _flag(params.get("drop_pending_updates")):
            self.pending.clear()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.pending)}

    async def _api_setMyCommands(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        commands = params.get("commands") or []
        for c in commands:
            if not (1 <= len(c["command"]) <= 32) or not (1 <= len(c["description"]) <= 256):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        key = scope_key(params.get("scope"))
        if key == "default":
            self.commands = list(commands)
        else:
            self.scoped[key] = list(commands)
        return True

    async def _api_getMyCommands(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        key = scope_key(params.get("scope"))
        return self.commands if key == "default" else self.scoped.get(key, [])

    async def _api_deleteMyCommands(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        key = scope_key(params.get("scope"))
        if key == "default":
            self.commands = []
        else:
            self.scoped.pop(key, None)
        return True

    def menu_for(self, chat_id: int, user_id: int | None = None) -> list[str]:
        """The command names a user sees in a chat, as Telegram picks the scope: the chat member's,
        then the chat's, then the default (the all-private/all-group scopes are not modelled)."""
        for key in ([f"chat_member:{chat_id}:{user_id}"] if user_id is not None else []) + [f"chat:{chat_id}"]:
            if key in self.scoped:
                return [c["command"] for c in self.scoped[key]]
        return [c["command"] for c in self.commands]

    async def _api_getUpdates(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        for other in self._waiting:  # Telegram ends the older request in favour of the newer one
            other.terminated = True
            other.wake.set()
        if offset > 0:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        poll = Poll(tag, offset, timeout, time.monotonic())
        self.polls.append(poll)
        self._waiting.append(poll)
        self._changed.set()
        try:
            end = poll.started + timeout
            while True:
                if poll.terminated:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        poll.outcome = "gone"
                        return []
                    poll.outcome = "conflict"
                    self.conflicts += 1
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only "
                                        "one bot instance is running")
                ready = [u for u in self.pending if u["update_id"] >= offset][:limit]
                left = end - time.monotonic()
                if ready or left <= 0:
                    poll.outcome = "updates" if ready else "empty"
                    poll.returned = tuple(u["update_id"] for u in ready)
                    for u in ready:
                        self.delivered[u["update_id"]] += 1
                    return ready
                poll.wake.clear()
                try:
                    await asyncio.wait_for(poll.wake.wait(), left)
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            poll.outcome = "gone"
            raise
        finally:
            poll.ended = time.monotonic()
            if poll in self._waiting:
                self._waiting.remove(poll)
            self._changed.set()

    def _rate_check(self, chat_id: int) -> None:
        now = time.monotonic()
        blocked = self._blocked.get(chat_id, 0.0)
        if now < blocked:
            self.early_retries += 1
            self.status_429 += 1
            left = max(1, int(blocked - now + 0.999))
            raise ApiError(429, f"Too Many Requests: retry after {left}", {"retry_after": left})
        tokens, at = self._tokens.get(chat_id, (float(self.chat_burst), now))
        tokens = min(float(self.chat_burst), tokens + (now - at) * self.chat_rate_per_s)
        group = self._group_sends[chat_id] if chat_id < 0 else None
        if group is not None:
            while group and now - group[0] > 60:
                group.popleft()
        if tokens < 1 or (group is not None and len(group) >= self.group_per_minute):
            self._tokens[chat_id] = (tokens, now)
            self._blocked[chat_id] = now + self.retry_after
            self.status_429 += 1
            raise ApiError(429, f"Too Many Requests: retry after {self.retry_after}",
                           {"retry_after": self.retry_after})
        self._tokens[chat_id] = (tokens - 1, now)
        if group is not None:
            group.append(now)

    def _parse_text(self, params: dict[str, Any], key: str, limit: int) -> tuple[str, str, list[dict[str, Any]]]:
        raw = str(params.get(key) or "")
        if params.get("parse_mode") == "HTML":
            try:
                text, entities = parse_html(raw)
            except ParseError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        else:
            text, entities = raw, []
        if _units(text) > limit:
            raise ApiError(400, "Bad Request: message is too long" if key == "text"
                           else "Bad Request: message caption is too long")
        return raw, text, entities

    def _keyboard(self, params: dict[str, Any]) -> list[list[dict[str, Any]]] | None:
        markup = params.get("reply_markup")
        if not markup:
            return None
        rows = markup.get("inline_keyboard") or []
        for row in rows:
            for button in row:
                if len(str(button.get("callback_data", "")).encode()) > 64 or not button.get("text"):
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return rows

    def _message_json(self, m: BotMessage) -> dict[str, Any]:
        data: dict[str, Any] = {"message_id": m.message_id, "date": int(time.time()), "chat": self.chat(m.chat_id),
                                "from": self._bot_user()}
        if m.kind == "photo":
            data["photo"] = [{"file_id": f"photo{m.message_id}", "file_unique_id": f"u{m.message_id}",
                              "width": 800, "height": 600, "file_size": m.photo_bytes}]
            if m.text:
                data["caption"], data["caption_entities"] = m.text, m.entities
        else:
            data["text"] = m.text
            if m.entities:
                data["entities"] = m.entities
        if m.keyboard:
            data["reply_markup"] = {"inline_keyboard": m.keyboard}
        return data

    def _store(self, params: dict[str, Any], kind: str, key: str, limit: int, photo_bytes: int = 0) -> Any:
        chat_id = int(params["chat_id"])
        if chat_id in self.missing_chats:
            raise ApiError(400, "Bad Request: chat not found")
        keyboard = self._keyboard(params)
        raw, text, entities = self._parse_text(params, key, limit)
        if kind == "text" and not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        self._rate_check(chat_id)
        reply = params.get("reply_parameters") or {}
        m = BotMessage(next(self._message_ids), chat_id, kind, raw, text, entities, keyboard,
                       reply.get("message_id"), time.monotonic(), photo_bytes,
                       _flag(params.get("disable_notification")))
        markup = params.get("reply_markup") or {}
        if isinstance(markup, dict) and "keyboard" in markup:
            m.reply_keyboard = markup
        self.sent.append(m)
        self.messages[m.message_id] = m
        self._changed.set()
        return self._message_json(m)

    async def _api_sendMessage(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        return self._store(params, "text", "text", 4096)

    async def _api_sendPhoto(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        photo = params.get("photo")
        size = len(photo) if isinstance(photo, bytes) else 0
        if not size:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        return self._store(params, "photo", "caption", 1024, size)

    def _edited(self, params: dict[str, Any]) -> BotMessage:
        m = self.messages.get(int(params.get("message_id") or 0))
        if m is None or m.chat_id != int(params.get("chat_id") or 0):
            raise ApiError(400, "Bad Request: message to edit not found")
        return m

    async def _api_editMessageText(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        m = self._edited(params)
        raw, text, entities = self._parse_text(params, "text", 4096)
        keyboard = self._keyboard(params)  # none given: the inline keyboard is removed
        if text == m.text and keyboard == m.keyboard:
            raise ApiError(400, "Bad Request: message is not modified")
        self._rate_check(m.chat_id)
        m.html, m.text, m.entities, m.keyboard = raw, text, entities, keyboard
        self.edits.append((m.chat_id, m.message_id, text))
        self._changed.set()
        return self._message_json(m)

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        m = self._edited(params)
        keyboard = self._keyboard(params)
        if keyboard == m.keyboard:
            raise ApiError(400, "Bad Request: message is not modified")
        self._rate_check(m.chat_id)
        m.keyboard = keyboard
        self.edits.append((m.chat_id, m.message_id, m.text))
        self._changed.set()
        return self._message_json(m)

    async def _api_answerCallbackQuery(self, params: dict[str, Any], request: web.Request, tag: str) -> Any:
        query_id = str(params.get("callback_query_id"))
        if self._queries.get(query_id, True):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self._queries[query_id] = True
        self.answers.append(dict(params))
        self._changed.set()
        return True


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string, a form, a multipart body or JSON; JSON-looking values decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = value.file.read() if isinstance(value, web.FileField) else value
    for key in ("reply_markup", "reply_parameters", "allowed_updates", "commands", "link_preview_options",
                "scope"):
        value = params.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            params[key] = json.loads(value)
    return params


def scope_key(scope: Any) -> str:
    """``default``, ``chat:<id>``, ``chat_member:<chat id>:<user id>`` or the scope's type."""
    if not isinstance(scope, dict) or scope.get("type") in (None, "default"):
        return "default"
    kind = str(scope["type"])
    if kind == "chat":
        return f"chat:{scope['chat_id']}"
    if kind == "chat_member":
        return f"chat_member:{scope['chat_id']}:{scope['user_id']}"
    return kind


def _flag(value: Any) -> bool:
    return str(value).lower() in {"true", "1"}
