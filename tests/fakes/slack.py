"""A fake Slack on loopback: the Web API methods the app calls, Socket Mode, and ``response_url``.

- Web API (``/api/<method>``): ``auth.test``, ``chat.postMessage`` (bearer token checked, about one
  message per second per channel with a small burst, then HTTP 429 with ``Retry-After`` and
  ``{"ok": false, "error": "ratelimited"}`` as Slack answers), the three-step file upload of
  ``files_upload_v2``, and ``apps.connections.open`` (app-level token) returning the WebSocket URL.
- Socket Mode (``/link``): says hello, takes envelopes pushed by the test (:meth:`FakeSlack.command`,
  :meth:`FakeSlack.press`) and records each acknowledgement with the time it took.
- ``users.info``: the users added with :meth:`FakeSlack.add_user`, in the shape Slack answers
  (``{"ok": true, "user": {"id", "name", "real_name", "profile": {"display_name", "real_name"}}}``),
  ``user_not_found`` for anyone else; each call is recorded (:attr:`FakeSlack.users_info_calls`).
  ``users_info_error = "missing_scope"`` answers as an app without ``users:read`` does
  (``{"ok": false, "error": "missing_scope", "needed": "users:read", "provided": ...}``);
  ``users_info_429`` answers that many calls with HTTP 429, ``Retry-After`` and ``ratelimited``;
  ``users_info_delay_s`` makes each answer that slow.
- ``views.publish``: records each Home tab view published (:attr:`FakeSlack.views`, per user);
  :meth:`FakeSlack.open_home` sends the ``app_home_opened`` event a user's click on the tab produces.
- ``response_url`` (``/respond/<n>``): records what the app answered, so a test reads the channel the
  way a user would; :meth:`FakeSlack.press` presses a button on such a message.

``down`` makes chat.postMessage and uploads answer 503; ``hang`` makes them hang until released.
HTTP-mode requests are signed with :func:`sign` (or deliberately signed wrong) by the tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

TEAM = "T0TEAM0001"
BOT_USER = "U0BOT00001"
APP_ID = "A0APP00001"


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with an HTTP request: ``v0=HMAC-SHA256(secret, "v0:{ts}:{body}")``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Posted:
    """One message the app produced: through chat.postMessage, or through a response_url."""

    channel: str
    text: str
    blocks: list[dict[str, Any]]
    ts: str
    via: str  # "chat.postMessage" or the response_url id
    response_type: str = "in_channel"
    replace_original: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ephemeral(self) -> bool:
        return self.response_type == "ephemeral"

    def buttons(self) -> list[dict[str, Any]]:
        return [e for b in self.blocks if b.get("type") == "actions" for e in b.get("elements", [])]

    def readable(self) -> str:
        parts = [self.text]
        for b in self.blocks:
            text = b.get("text")
            if isinstance(text, dict):
                parts.append(text.get("text", ""))
            parts += [f.get("text", "") for f in b.get("fields") or []]
            parts += [e.get("text", "") for e in b.get("elements") or [] if b.get("type") == "context"]
        return "\n".join(p for p in parts if p)


class FakeSlack:
    def __init__(self, *, bot_token: str = "xoxb-test", app_token: str = "xapp-test", post_rate_per_s: float = 1.0,
                 post_burst: int = 5) -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.rate, self.burst = post_rate_per_s, post_burst
        self.posted: list[Posted] = []
        self.uploads: dict[str, bytes] = {}
        self.completed_uploads: list[dict[str, Any]] = []
        self.views: list[tuple[str, dict[str, Any]]] = []  # (user_id, view) per views.publish
        self.users: dict[str, dict[str, Any]] = {}  # user id -> the user object users.info answers
        self.users_info_calls: list[str] = []  # the user asked about, per users.info call
        self.users_info_error = ""  # e.g. "missing_scope": every users.info call is refused so
        self.users_info_429 = 0  # the next n users.info calls are answered 429
        self.users_info_delay_s = 0.0  # how long users.info takes to answer
        self.acks: dict[str, tuple[dict[str, Any], float]] = {}
        self.down = False
        self.hang = False
        self.unavailable = 0  # requests refused (down) or left hanging (hang)
        self.respond_failures = 0  # the next n answers to a response_url are refused with 503
        self.respond_refused = 0
        self.status_429 = 0
        self.sockets: list[web.WebSocketResponse] = []
        self._buckets: dict[str, tuple[float, float]] = {}
        self._release = asyncio.Event()
        self._ids = itertools.count(1)
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._response_channels: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self.base = self.api_base = ""

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk reads some methods (users.info) with GET
        app.router.add_get("/link", self._socket)
        app.router.add_post("/respond/{rid}", self._respond)
        app.router.add_post("/upload/{fid}", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.base}/api/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        for ws in list(self.sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    def release(self) -> None:
        self.hang = False
        self._release.set()

    def exhaust(self, channel: str, for_s: float = 0.5) -> None:
        """Someone else (another app, another process) has just flooded the channel: nothing more is
        accepted there for about ``for_s`` seconds."""
        self._buckets[channel] = (1.0 - self.rate * for_s, time.monotonic())

    def channel(self, channel: str) -> list[Posted]:
        return [p for p in self.posted if p.channel == channel]

    # -- Web API --------------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(dict(parse_qsl(await request.text())))
        return args

    def _token(self, request: web.Request) -> str:
        return request.headers.get("Authorization", "").removeprefix("Bearer ")

    def _limited(self, channel: str) -> web.Response | None:
        now = time.monotonic()
        tokens, at = self._buckets.get(channel, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1:
            self.status_429 += 1
            self._buckets[channel] = (tokens, now)
            retry = max(1, math.ceil((1 - tokens) / self.rate))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(retry)})
        self._buckets[channel] = (tokens - 1, now)
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = self._token(request)
        if method == "apps.connections.open":
            if token != self.app_token:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response({"ok": True, "url": self.base.replace("http://", "ws://") + "/link"})
        if token != self.bot_token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        args = await self._args(request)
        if method == "auth.test":
            return web.json_response({"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "tradectl",
                                      "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0BOT00001"})
        if method in ("chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"):
            if self.hang:
                self.unavailable += 1
                await self._release.wait()
                return web.json_response({"ok": False, "error": "fatal_error"}, status=503)
            if self.down:
                self.unavailable += 1
                return web.json_response({"ok": False, "error": "fatal_error"}, status=503)
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            if not channel.startswith(("C", "G", "D")):
                return web.json_response({"ok": False, "error": "channel_not_found"})
            limited = self._limited(channel)
            if limited is not None:
                return limited
            ts = f"{time.time():.6f}"
            self.posted.append(Posted(channel, str(args.get("text", "")), list(args.get("blocks") or []), ts,
                                      "chat.postMessage", raw=args))
            return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}})
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._ids):08d}"
            return web.json_response({"ok": True, "file_id": fid, "upload_url": f"{self.base}/upload/{fid}"})
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            self.completed_uploads.append({**args, "files": files})
            return web.json_response({"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]})
        if method == "users.info":
            return await self._users_info(str(args.get("user", "")))
        if method == "views.publish":
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            user = str(args.get("user_id", ""))
            if not user.startswith(("U", "W")) or not isinstance(view, dict) or view.get("type") != "home":
                return web.json_response({"ok": False, "error": "invalid_arguments"})
            if len(view.get("blocks") or []) > 100:
                return web.json_response({"ok": False, "error": "invalid_blocks"})
            self.views.append((user, view))
            return web.json_response({"ok": True, "view": {"id": f"V{next(self._ids):08d}", **view}})
        return web.json_response({"ok": False, "error": "unknown_method"})

    def add_user(self, user_id: str, *, name: str, display_name: str = "", real_name: str = "") -> None:
        """A workspace member as ``users.info`` describes one (a blank display name is how Slack shows
        that the person set none)."""
        self.users[user_id] = {"id": user_id, "team_id": TEAM, "name": name, "deleted": False,
                               "real_name": real_name, "tz": "Europe/Berlin", "is_bot": False,
                               "profile": {"display_name": display_name, "display_name_normalized": display_name,
                                           "real_name": real_name, "real_name_normalized": real_name,
                                           "team": TEAM, "image_48": "https://example.invalid/48.png"}}

    async def _users_info(self, user_id: str) -> web.Response:
        self.users_info_calls.append(user_id)
        await asyncio.sleep(self.users_info_delay_s)
        if self.users_info_429 > 0:
            self.users_info_429 -= 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "30"})
        if self.users_info_error == "missing_scope":
            return web.json_response({"ok": False, "error": "missing_scope", "needed": "users:read",
                                      "provided": "commands,chat:write,files:write"})
        if self.users_info_error:
            return web.json_response({"ok": False, "error": self.users_info_error})
        if user_id not in self.users:
            return web.json_response({"ok": False, "error": "user_not_found"})
        return web.json_response({"ok": True, "user": self.users[user_id]})

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["fid"]] = await request.read()
        return web.Response(text="OK - 1")

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.respond_failures > 0:
            self.respond_failures -= 1
            self.respond_refused += 1
            return web.Response(status=503, text="service unavailable")
        rid = request.match_info["rid"]
        channel = self._response_channels.get(rid, "?")
        self.posted.append(Posted(channel, str(body.get("text", "")), list(body.get("blocks") or []),
                                  f"{time.time():.6f}", rid, body.get("response_type") or "ephemeral",
                                  bool(body.get("replace_original")), body))
        return web.Response(text="ok")

    # -- Socket Mode ----------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.sockets),
                            "connection_info": {"app_id": APP_ID}, "debug_info": {"host": "fake"}})
        try:
            async for frame in ws:
                ack = json.loads(frame.data)
                env = ack.get("envelope_id", "")
                waiter = self._ack_waiters.pop(env, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(ack)
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
        return ws

    async def push(self, kind: str, payload: dict[str, Any], *, via: int = 0,
                   timeout: float = 5.0) -> tuple[dict[str, Any], float]:
        """Deliver one envelope to one connection (as Slack does; ``via`` picks which, in order of
        connection) and wait for its ack: (ack, seconds)."""
        ws = [s for s in self.sockets if not s.closed][via]
        env = f"env-{next(self._ids)}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack_waiters[env] = waiter
        started = time.monotonic()
        await ws.send_json({"envelope_id": env, "type": kind, "payload": payload,
                            "accepts_response_payload": kind == "slash_commands", "retry_attempt": 0,
                            "retry_reason": ""})
        ack = await asyncio.wait_for(waiter, timeout)
        self.acks[env] = (ack, time.monotonic() - started)
        return ack, time.monotonic() - started

    # -- payloads a user produces ---------------------------------------------------------------

    def _response_url(self, channel: str) -> str:
        rid = str(next(self._ids))
        self._response_channels[rid] = channel
        return f"{self.base}/respond/{rid}"

    def command_payload(self, text: str, *, user: str, channel: str, team: str = TEAM,
                        command: str = "/tradectl") -> dict[str, str]:
        return {"token": "legacy", "team_id": team, "team_domain": "acme", "channel_id": channel,
                "channel_name": "directmessage" if channel.startswith("D") else "ops", "user_id": user,
                "user_name": user.lower(), "command": command, "text": text, "api_app_id": APP_ID,
                "is_enterprise_install": "false", "response_url": self._response_url(channel),
                "trigger_id": f"{next(self._ids)}.{int(time.time())}.trigger"}

    def action_payload(self, message: Posted, label: str, *, user: str, team: str = TEAM) -> dict[str, Any]:
        button = next(b for b in message.buttons() if b["text"]["text"] == label)
        action = {**button, "block_id": "b", "action_ts": f"{time.time():.6f}"}
        return {"type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": team},
                "api_app_id": APP_ID, "token": "legacy", "trigger_id": f"{next(self._ids)}.{int(time.time())}.press",
                "team": {"id": team, "domain": "acme"}, "channel": {"id": message.channel, "name": "ops"},
                "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                              "is_ephemeral": message.ephemeral},
                "message": {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
                "response_url": self._response_url(message.channel), "actions": [action]}

    def home_views(self, user: str) -> list[dict[str, Any]]:
        return [view for who, view in self.views if who == user]

    def home_payload(self, *, user: str, channel: str, team: str = TEAM, tab: str = "home") -> dict[str, Any]:
        """The Events API callback Slack sends when ``user`` opens one of the app's tabs."""
        now = time.time()
        return {"token": "legacy", "team_id": team, "api_app_id": APP_ID, "type": "event_callback",
                "event_id": f"Ev{next(self._ids):08d}", "event_time": int(now),
                "event": {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab,
                          "event_ts": f"{now:.6f}"}}

    async def open_home(self, *, user: str, channel: str, team: str = TEAM, tab: str = "home",
                        via: int = 0) -> tuple[dict[str, Any], float]:
        return await self.push("events_api", self.home_payload(user=user, channel=channel, team=team, tab=tab),
                               via=via)

    async def command(self, text: str, *, user: str, channel: str, team: str = TEAM,
                      via: int = 0) -> tuple[dict[str, Any], float]:
        return await self.push("slash_commands", self.command_payload(text, user=user, channel=channel, team=team),
                               via=via)

    async def press(self, message: Posted, label: str, *, user: str, team: str = TEAM,
                    via: int = 0) -> tuple[dict[str, Any], float]:
        return await self.push("interactive", self.action_payload(message, label, user=user, team=team), via=via)

