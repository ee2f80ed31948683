"""A fake Discord on loopback: the REST API a bot uses and a gateway WebSocket, enough for discord.py.

- REST (``/api/v10``): ``users/@me`` and ``oauth2/applications/@me`` (login), bulk command overwrite,
  ``POST /channels/{id}/messages`` with Discord's per-route buckets (``X-RateLimit-*`` headers, 429
  with a JSON ``retry_after``, a global limit), interaction callbacks, follow-ups and edits of
  ``@original`` — with Discord's rules: one callback per interaction, and the first follow-up after a
  "thinking" defer replaces the loading message.
- Gateway (``/gateway``): HELLO, IDENTIFY -> READY, heartbeat ACKs, then ``INTERACTION_CREATE``
  dispatches built by :meth:`FakeDiscord.slash` and :meth:`FakeDiscord.press` from the messages the bot
  really sent — so a button press carries the components Discord would echo back.

``down`` makes channel messages answer 503, ``hang`` makes them hang until released (and never
count): an outage of the alert path while the gateway stays up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

DISCORD_EPOCH_MS = 1420070400000
APP_ID = "900000000000000001"
BOT_ID = "900000000000000002"
EPHEMERAL, LOADING = 64, 128
_counter = itertools.count(1)


def snowflake(at: datetime | None = None) -> str:
    ms = int((at or datetime.now(UTC)).timestamp() * 1000)
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (next(_counter) & 0x3FFFFF))


def _json(doc: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON as Discord sends it: ``Content-Type: application/json`` exactly (discord.py compares it)."""
    return web.Response(body=json.dumps(doc).encode(), status=status, headers=headers, content_type="application/json")


def _pings(data: dict[str, Any]) -> dict[str, Any]:
    """Who Discord would notify for a message: ``@everyone``/``@here`` and unescaped ``<@id>``/``<@&id>``
    in the content, as far as ``allowed_mentions`` lets it (no ``allowed_mentions`` parses everything)."""
    content = str(data.get("content") or "")
    allowed = data.get("allowed_mentions")
    parse = {"everyone", "users", "roles"} if allowed is None else set(allowed.get("parse") or [])
    return {"mention_everyone": "everyone" in parse and re.search(r"@(everyone|here)", content) is not None,
            "mentions": [user(u) for u in re.findall(r"(?<!\\)<@!?([0-9]+)>", content)] if "users" in parse else [],
            "mention_roles": re.findall(r"(?<!\\)<@&([0-9]+)>", content) if "roles" in parse else []}


def user(uid: str, name: str = "") -> dict[str, Any]:
    return {"id": uid, "username": name or f"user{uid[-4:]}", "discriminator": "0", "global_name": None,
            "avatar": None, "bot": uid == BOT_ID}


@dataclass
class FakeInteraction:
    """One interaction and everything the bot did about it, in order: ``("callback", body)``,
    ``("followup", message)``, ``("edit", message)``, ``("delete", {})``."""

    id: str
    token: str
    type: int
    channel_id: str
    user_id: str
    message_id: str | None = None  # the message whose component was pressed
    original_id: str | None = None  # the message created by the callback
    deferred: bool = False
    followed_up: bool = False
    answers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(kind == "callback" for kind, _ in self.answers)

    def messages(self) -> list[dict[str, Any]]:
        """Messages the bot created or edited for this interaction (callbacks carrying data included)."""
        out = []
        for kind, body in self.answers:
            if kind == "callback" and body.get("data"):
                out.append(body["data"])
            elif kind in ("followup", "edit"):
                out.append(body)
        return out

    def text(self) -> str:
        """Content, embed titles/descriptions/fields of every answer: what the user can read."""
        parts: list[str] = []
        for m in self.messages():
            parts.append(m.get("content") or "")
            for e in m.get("embeds") or []:
                parts += [e.get("title") or "", e.get("description") or ""]
                parts += [f"{f['name']}: {f['value']}" for f in e.get("fields") or []]
        return "\n".join(p for p in parts if p)


class FakeDiscord:
    def __init__(self, *, token: str = "test-bot-token", channel_limit: int = 5, channel_window_s: float = 5.0,
                 global_per_s: int = 50) -> None:
        self.token = token
        self.channel_limit, self.channel_window_s, self.global_per_s = channel_limit, channel_window_s, global_per_s
        self.messages: dict[str, dict[str, Any]] = {}
        self.channel_posts: dict[str, list[dict[str, Any]]] = defaultdict(list)  # REST posts by the bot
        self.channel_bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)  # those posts' JSON as received
        self.channel_edits: list[tuple[str, str, dict[str, Any]]] = []  # the bot editing its messages (REST)
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # guild id (or "global") -> definitions
        self.down = False
        self.hang = False
        self.unavailable = 0  # channel-message requests refused (down) or left hanging (hang)
        self.status_429 = 0
        self.identifies = 0
        self.sessions: set[web.WebSocketResponse] = set()
        self._windows: dict[str, tuple[float, int]] = {}
        self._global: tuple[float, int] = (0.0, 0)
        self._release = asyncio.Event()
        self._seq = itertools.count(2)
        self._runner: web.AppRunner | None = None
        self.base = self.api_base = self.gateway_url = ""

    # -- server ---------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        r = app.router
        r.add_get("/api/v10/users/@me", self._me)
        r.add_get("/api/v10/oauth2/applications/@me", self._application)
        r.add_put("/api/v10/applications/{app}/guilds/{guild}/commands", self._put_commands)
        r.add_put("/api/v10/applications/{app}/commands", self._put_commands)
        r.add_post("/api/v10/channels/{channel}/messages", self._channel_message)
        r.add_patch("/api/v10/channels/{channel}/messages/{mid}", self._channel_edit)
        r.add_post("/api/v10/interactions/{iid}/{token}/callback", self._callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_patch("/api/v10/webhooks/{app}/{token}/messages/{mid}", self._edit)
        r.add_delete("/api/v10/webhooks/{app}/{token}/messages/{mid}", self._delete)
        r.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        self.api_base, self.gateway_url = f"{self.base}/api/v10", f"ws://127.0.0.1:{port}/gateway"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        for ws in list(self.sessions):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    def release(self) -> None:
        """End a ``hang``: requests waiting answer 503."""
        self.hang = False
        self._release.set()

    # -- REST -----------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @staticmethod
    def _unauthorized() -> web.Response:
        return _json({"message": "401: Unauthorized", "code": 0}, status=401)

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return _json({**user(BOT_ID, "tradectl"), "bot": True, "verified": True, "mfa_enabled": False,
                                  "flags": 0, "public_flags": 0})

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return _json({"id": APP_ID, "name": "tradectl", "icon": None, "description": "", "bot_public": False,
                                  "bot_require_code_grant": False, "owner": user("80351110224678912", "owner"),
                                  "verify_key": "0" * 64, "flags": 0, "team": None, "summary": ""})

    async def _put_commands(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        self.commands[request.match_info.get("guild", "global")] = body
        return _json([{**c, "id": snowflake(), "application_id": APP_ID, "version": "1"} for c in body])

    def _limited(self, channel: str) -> web.Response | dict[str, str]:
        """Discord-style buckets: a fixed window per channel, and a global per-second cap."""
        now = time.monotonic()
        g_start, g_count = self._global
        if now - g_start >= 1.0:
            g_start, g_count = now, 0
        if g_count >= self.global_per_s:
            retry = 1.0 - (now - g_start)
            self.status_429 += 1
            return _json({"message": "You are being rate limited.", "retry_after": round(retry, 3),
                                      "global": True}, status=429,
                                     headers={"Retry-After": str(math.ceil(retry)), "X-RateLimit-Global": "true",
                                              "X-RateLimit-Scope": "global"})
        start, count = self._windows.get(channel, (now, 0))
        if now - start >= self.channel_window_s:
            start, count = now, 0
        reset_after = self.channel_window_s - (now - start)
        if count >= self.channel_limit:
            self.status_429 += 1
            return _json({"message": "You are being rate limited.", "retry_after": round(reset_after, 3),
                                      "global": False}, status=429,
                                     headers={"Retry-After": str(math.ceil(reset_after)), "X-RateLimit-Limit":
                                              str(self.channel_limit), "X-RateLimit-Remaining": "0",
                                              "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                                              "X-RateLimit-Bucket": f"b-{channel}", "X-RateLimit-Scope": "user"})
        self._windows[channel] = (start, count + 1)
        self._global = (g_start, g_count + 1)
        return {"X-RateLimit-Limit": str(self.channel_limit),
                "X-RateLimit-Remaining": str(self.channel_limit - count - 1),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": f"b-{channel}"}

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        if not request.content_type.startswith("multipart/"):
            return await request.json(), []
        data: dict[str, Any] = {}
        files: list[tuple[str, bytes]] = []
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                data = json.loads(await part.text())
            else:
                files.append((part.filename or "file", bytes(await part.read())))
        return data, files

    async def _channel_message(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if not self._authorized(request):
            return self._unauthorized()
        if self.hang:
            self.unavailable += 1
            await self._release.wait()
            return _json({"message": "gateway timeout"}, status=503)
        if self.down:
            self.unavailable += 1
            return _json({"message": "service unavailable"}, status=503)
        limited = self._limited(channel)
        if isinstance(limited, web.Response):
            return limited
        body, files = await self._body(request)
        msg = self._message(channel, body, files)
        self.channel_bodies[channel].append(body)
        self.channel_posts[channel].append(msg)
        return _json(msg, headers=limited)

    async def _channel_edit(self, request: web.Request) -> web.Response:
        """The bot editing one of its messages in a channel (``channel_edits``: channel, message id, body)."""
        if not self._authorized(request):
            return self._unauthorized()
        channel, mid = request.match_info["channel"], request.match_info["mid"]
        msg = self.messages.get(mid)
        if msg is None or msg["channel_id"] != channel or msg["flags"] & EPHEMERAL:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        body, _ = await self._body(request)
        self.channel_edits.append((channel, mid, body))
        msg.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
        msg["edited_timestamp"] = datetime.now(UTC).isoformat()
        return _json(msg)

    def _message(self, channel: str, data: dict[str, Any], files: tuple[tuple[str, bytes], ...] | list[Any] = (),
                 flags: int = 0) -> dict[str, Any]:
        mid = snowflake()
        msg = {"id": mid, "channel_id": channel, "author": user(BOT_ID, "tradectl"),
               "content": data.get("content") or "",
               "embeds": data.get("embeds") or [], "components": data.get("components") or [],
               "attachments": [{"id": snowflake(), "filename": name, "size": len(png), "url": f"{self.base}/a/{name}",
                                "proxy_url": f"{self.base}/a/{name}"} for name, png in files],
               "timestamp": datetime.now(UTC).isoformat(), "edited_timestamp": None, "tts": False,
               **_pings(data), "pinned": False, "type": 0,
               "flags": int(data.get("flags") or 0) | flags, "application_id": APP_ID}
        self.messages[mid] = msg
        return msg

    def _interaction(self, request: web.Request) -> FakeInteraction | None:
        return self.interactions.get(request.match_info["token"])

    async def _callback(self, request: web.Request) -> web.Response:
        it = self._interaction(request)
        if it is None or it.id != request.match_info["iid"]:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if it.acknowledged:
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060},
                                     status=400)
        body, files = await self._body(request)
        it.answers.append(("callback", body))
        kind, data = body["type"], body.get("data") or {}
        info: dict[str, Any] = {"id": it.id, "type": it.type}
        resource: dict[str, Any] | None = None
        if kind == 4:
            msg = self._message(it.channel_id, data, files)
            it.original_id = msg["id"]
            resource = {"type": 4, "message": msg}
        elif kind == 5:
            msg = self._message(it.channel_id, {}, flags=LOADING | (int(data.get("flags") or 0) & EPHEMERAL))
            it.original_id, it.deferred = msg["id"], True
            info["response_message_loading"] = True
            resource = {"type": 5, "message": msg}
        elif kind == 7 and it.message_id:
            msg = self.messages[it.message_id]
            msg.update({k: v for k, v in data.items() if k in ("content", "embeds", "components")})
            resource = {"type": 7, "message": msg}
        if resource and "message" in resource:
            info["response_message_id"] = resource["message"]["id"]
            info["response_message_ephemeral"] = bool(resource["message"]["flags"] & EPHEMERAL)
        return _json({"interaction": info, **({"resource": resource} if resource else {})})

    async def _followup(self, request: web.Request) -> web.Response:
        it = self._interaction(request)
        if it is None or not it.acknowledged:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        body, files = await self._body(request)
        it.answers.append(("followup", body))
        if it.deferred and not it.followed_up and it.original_id in self.messages:
            msg = self.messages[it.original_id]  # Discord: the first follow-up replaces "thinking..."
            msg.update({"content": body.get("content") or "", "embeds": body.get("embeds") or [],
                        "components": body.get("components") or [], "flags": msg["flags"] & ~LOADING})
        else:
            msg = self._message(it.channel_id, body, files)
        it.followed_up = True
        return _json(msg)

    def _original(self, it: FakeInteraction) -> str | None:
        return it.original_id or it.message_id

    async def _edit(self, request: web.Request) -> web.Response:
        it = self._interaction(request)
        mid = self._original(it) if it and request.match_info["mid"] == "@original" else request.match_info["mid"]
        if it is None or mid not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        body, _ = await self._body(request)
        it.answers.append(("edit", body))
        msg = self.messages[mid]
        msg.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
        msg["flags"] &= ~LOADING
        return _json(msg)

    async def _delete(self, request: web.Request) -> web.Response:
        it = self._interaction(request)
        mid = self._original(it) if it else None
        if it is None or mid not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        it.answers.append(("delete", {}))
        del self.messages[mid]
        return web.Response(status=204)

    # -- gateway --------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        try:
            async for frame in ws:
                msg = json.loads(frame.data)
                if msg["op"] == 1:
                    await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
                elif msg["op"] == 2:
                    if msg["d"].get("token") != self.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    self.identifies += 1
                    self.sessions.add(ws)
                    await ws.send_json({"op": 0, "t": "READY", "s": 1, "d": {
                        "v": 10, "user": {**user(BOT_ID, "tradectl"), "bot": True}, "guilds": [],
                        "session_id": f"session-{self.identifies}", "resume_gateway_url": self.gateway_url,
                        "application": {"id": APP_ID, "flags": 0}, "private_channels": []}})
                elif msg["op"] == 6:
                    await ws.send_json({"op": 9, "d": False, "s": None, "t": None})
        finally:
            self.sessions.discard(ws)
        return ws

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a gateway event to every connected session; returns how many received it."""
        sent = 0
        for ws in list(self.sessions):
            if not ws.closed:
                await ws.send_json({"op": 0, "t": event, "s": next(self._seq), "d": data})
                sent += 1
        return sent

    def _base(self, kind: int, user_id: str, channel_id: str, guild_id: str | None, at: datetime | None,
              name: str = "") -> tuple[FakeInteraction, dict[str, Any]]:
        iid, token = snowflake(at), f"tok-{snowflake()}"
        it = FakeInteraction(iid, token, kind, channel_id, user_id)
        payload: dict[str, Any] = {"id": iid, "application_id": APP_ID, "type": kind, "token": token, "version": 1,
                                   "channel_id": channel_id, "locale": "en-US", "app_permissions": "0",
                                   "entitlements": [], "attachment_size_limit": 8388608}
        who = {**user(user_id), "global_name": name or None}  # the name a user picked, over their username
        if guild_id is not None:
            payload.update(guild_id=guild_id, guild_locale="en-US", context=0,
                           authorizing_integration_owners={"0": guild_id},
                           channel={"id": channel_id, "type": 0, "guild_id": guild_id, "name": "ops", "position": 0,
                                    "permission_overwrites": [], "nsfw": False, "parent_id": None, "flags": 0},
                           member={"user": who, "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False,
                                   "mute": False, "flags": 0, "permissions": "0", "nick": None, "avatar": None,
                                   "pending": False, "premium_since": None, "communication_disabled_until": None})
        else:
            payload.update(user=who, context=1, authorizing_integration_owners={"0": user_id},
                           channel={"id": channel_id, "type": 1, "recipients": [who], "flags": 0})
        self.interactions[token] = it
        return it, payload

    async def slash(self, name: str, options: dict[str, Any] | None = None, *, user_id: str, channel_id: str,
                    guild_id: str | None, at: datetime | None = None, user_name: str = "") -> FakeInteraction:
        """A user runs ``/name`` with ``options`` (name -> value); ``guild_id=None`` means a DM;
        ``user_name`` is the user's global (display) name."""
        it, payload = self._base(2, user_id, channel_id, guild_id, at, user_name)
        opts = [{"name": k, "type": 4 if isinstance(v, int) else 3, "value": v} for k, v in (options or {}).items()]
        payload["data"] = {"id": snowflake(), "name": name, "type": 1, "options": opts}
        await self.dispatch("INTERACTION_CREATE", payload)
        return it

    async def press(self, message_id: str, label: str, *, user_id: str, guild_id: str | None,
                    channel_id: str | None = None, user_name: str = "") -> FakeInteraction:
        """A user presses the button labelled ``label`` on a message the bot sent."""
        msg = self.messages[message_id]
        button = next(c for row in msg["components"] for c in row["components"] if c.get("label") == label)
        it, payload = self._base(3, user_id, channel_id or msg["channel_id"], guild_id, None, user_name)
        it.message_id = message_id
        payload["message"] = msg
        payload["data"] = {"custom_id": button["custom_id"], "component_type": 2}
        await self.dispatch("INTERACTION_CREATE", payload)
        return it

    def buttons(self, message_id: str) -> list[dict[str, Any]]:
        msg = self.messages.get(message_id) or {}
        return [c for row in msg.get("components") or [] for c in row.get("components", [])]
